"""Helpers for the photo tests: images made with Pillow, and storages (a folder, moto's S3)."""

import io
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import ExifTags, Image

from app.config import Settings
from app.storage import LocalStorage, S3Storage, Storage
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def jpeg(width: int = 64, height: int = 48, *, gps: bool = True, orientation: int = 1) -> bytes:
    """A JPEG with EXIF: a camera make, GPS coordinates and an orientation."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    for x in range(width // 2):  # the left half blue, so a rotation shows
        for y in range(height):
            image.putpixel((x, y), (20, 40, 220))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.Orientation] = orientation
    if gps:
        exif[ExifTags.Base.GPSInfo] = {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (51.0, 30.0, 12.0),
            ExifTags.GPS.GPSLongitudeRef: "W",
            ExifTags.GPS.GPSLongitude: (0.0, 7.0, 40.0),
        }
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (0, 128, 0, 200)).save(out, "PNG")
    return out.getvalue()


def webp(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (0, 0, 128)).save(out, "WEBP")
    return out.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'
HTML = b"<!doctype html><html><script>alert(document.cookie)</script></html>"


def truncated() -> bytes:
    data = jpeg(400, 300)
    return data[: len(data) // 2]


def bomb() -> bytes:
    """A small PNG that decodes to 100 megapixels (1-bit, all zeros)."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG", optimize=True)
    return out.getvalue()


def has_exif(data: bytes) -> bool:
    image = Image.open(io.BytesIO(data))
    return bool(image.getexif()) or "exif" in image.info or b"Exif\x00\x00" in data


class MotoServer:
    """moto's S3 as a real endpoint: a subprocess on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = Path(sys.executable).parent / "moto_server"
        self.process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url + "/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("moto_server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def moto_available() -> bool:
    return (Path(sys.executable).parent / "moto_server").exists()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    if not moto_available():
        pytest.skip("moto[server] is not installed (it is in requirements-dev.lock)")
    server = MotoServer()
    yield server
    server.stop()


def s3_storage(settings: Settings, moto: MotoServer, bucket: str) -> S3Storage:
    s3 = settings.model_copy(
        update={
            "media_s3_bucket": bucket,
            "media_s3_endpoint": moto.url,
            "media_s3_access_key": "test",
            "media_s3_secret_key": "test",
        }
    )
    storage = S3Storage(s3)
    storage.client.create_bucket(Bucket=bucket)
    return storage


@pytest.fixture(params=["local", "s3"])
def media(request: pytest.FixtureRequest, app: Any, tmp_path: Path) -> Iterator[Storage]:
    """Each test's own storage, put in the app: a fresh folder, or a fresh bucket on moto
    (named at random: a port number comes round again within a run, and moto's us-east-1
    hands back an existing bucket, another test's photos in it)."""
    if request.param == "local":
        storage: Storage = LocalStorage(tmp_path / "media")
    else:
        server = request.getfixturevalue("moto")
        storage = s3_storage(app.state.settings, server, f"photos-{uuid.uuid4().hex}")
    before = app.state.media
    app.state.media = storage
    yield storage
    app.state.media = before
    if isinstance(storage, LocalStorage):
        shutil.rmtree(storage.root, ignore_errors=True)
