"""Issue 17's photo figure: how long a 12-megapixel upload takes to process (decode, orient,
strip, re-encode, thumbnail: app.services.photos.process) and how much memory it needs at
most. A measurement, not a test: `make bench-photos` prints it with the target (< 1 s).

The photo is made first in a child process (a 4000 x 3000 camera-like JPEG with EXIF and
GPS, noise included so it does not compress to nothing); this process then reads it and
records its peak resident memory before and after processing, so the figure is what the
processing itself adds.
"""

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app.services.photos import process

WIDTH, HEIGHT, RUNS, TARGET = 4000, 3000, 5, 1.0
MAKE = """
import sys, io
from PIL import Image, ImageFilter, ExifTags
noise = Image.effect_noise((WIDTH, HEIGHT), 60).convert("RGB")
base = Image.linear_gradient("L").resize((WIDTH, HEIGHT)).convert("RGB")
image = Image.blend(base, noise, 0.35).filter(ImageFilter.SMOOTH)
exif = Image.Exif()
exif[ExifTags.Base.Make] = "Bench"
exif[ExifTags.Base.Orientation] = 6
exif[ExifTags.Base.GPSInfo] = {1: "N", 2: (51.0, 30.0, 12.0)}
image.save(sys.argv[1], "JPEG", quality=92, exif=exif.tobytes())
""".replace("WIDTH", str(WIDTH)).replace("HEIGHT", str(HEIGHT))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "camera.jpg"
        subprocess.run([sys.executable, "-c", MAKE, str(path)], check=True)
        data = path.read_bytes()
    before = peak_mb()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        done = process(data, 50_000_000)
        times.append(time.perf_counter() - start)
    added = peak_mb() - before
    median = statistics.median(times)
    verdict = "PASS" if median < TARGET else "FAIL"
    print(f"12-megapixel JPEG ({WIDTH}x{HEIGHT}, {len(data) / 1e6:.1f} MB, EXIF + GPS, rotated)")
    print(
        f"  stored: {done.width}x{done.height} {done.content_type}, {len(done.data) / 1e6:.1f} MB;"
    )
    print(
        f"  thumbnail {done.thumb_width}x{done.thumb_height} WebP, {len(done.thumb) / 1e3:.0f} kB"
    )
    print(
        f"  processing, median of {RUNS}: {median * 1000:.0f} ms (best {min(times) * 1000:.0f} ms)"
        f"  target < {TARGET * 1000:.0f} ms: {verdict}"
    )
    print(
        f"  peak memory added: {added:.0f} MB (one decoded frame is {WIDTH * HEIGHT * 3 / 1e6:.0f} MB)"
    )
    print(f"  on {os.cpu_count()} cores, Python {sys.version.split()[0]}, Pillow {_pillow()}")


def _pillow() -> str:
    import PIL

    return PIL.__version__


if __name__ == "__main__":
    main()
