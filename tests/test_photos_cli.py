"""The operator's side of photos, run as an operator runs it: photos land in media/ beside the
SQLite database by default; `media check` removes orphans and reports missing files; backup
copies the folder and restore puts it back; `export --format archive` carries the photos."""

import hashlib
import io
import json
import shutil
import uuid
import zipfile
from pathlib import Path

from tests.photos_support import jpeg
from tests.test_cli import PASSWORD, run, sqlite_db  # noqa: F401 (fixture)


def day_one_zip(path: Path) -> None:
    photo = jpeg(60, 40)
    md5 = hashlib.md5(photo).hexdigest()  # noqa: S324 - Day One names its files so
    journal = {
        "entries": [
            {
                "creationDate": "2026-10-05T08:00:00Z",
                "text": "Won the pub quiz",
                "photos": [{"md5": md5, "type": "jpeg"}],
            }
        ]
    }
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Journal.json", json.dumps(journal))
        z.writestr(f"photos/{md5}.jpeg", photo)


def test_media_check_backup_and_archive_export(sqlite_db: str, tmp_path: Path):  # noqa: F811
    assert (
        run(
            sqlite_db, "create-user", "ops@example.com", "--password-stdin", stdin=PASSWORD
        ).returncode
        == 0
    )
    source = tmp_path / "dayone.zip"
    day_one_zip(source)
    imported = run(sqlite_db, "import", "ops@example.com", str(source))
    assert imported.returncode == 0, imported.stderr
    media = tmp_path / "media"  # beside cli.sqlite3, as DEV_MAIL_DIR's default is
    files = sorted(p for p in media.rglob("*") if p.is_file())
    assert len(files) == 2, files  # the photo and its thumbnail

    clean = run(sqlite_db, "media", "check", "--dry-run")
    assert clean.returncode == 0, clean.stderr
    assert "2 files" in clean.stdout and "0 orphans, 0 missing" in clean.stdout

    orphan = media / str(uuid.uuid4()) / "AAAAAAAAAAAAAAAAAAAAAA.jpg"
    orphan.parent.mkdir()
    orphan.write_bytes(b"left by a crash")
    dry = run(sqlite_db, "media", "check", "--dry-run")
    assert "orphan (would remove)" in dry.stdout and orphan.exists()
    removed = run(sqlite_db, "media", "check")
    assert removed.returncode == 0 and "1 orphans, 0 missing" in removed.stdout
    assert not orphan.exists()

    backup = tmp_path / "backup.sqlite3"
    done = run(sqlite_db, "backup", str(backup))
    assert done.returncode == 0, done.stderr
    assert sorted(
        p.name for p in (tmp_path / "backup.sqlite3.media").rglob("*") if p.is_file()
    ) == sorted(p.name for p in files)

    # A lost folder comes back with the database.
    shutil.rmtree(media)
    restored = run(sqlite_db, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert "photos restored" in restored.stdout
    assert sorted(p.name for p in media.rglob("*") if p.is_file()) == sorted(p.name for p in files)

    archive = tmp_path / "out.zip"
    exported = run(
        sqlite_db, "export", "ops@example.com", "--format", "archive", "-o", str(archive)
    )
    assert exported.returncode == 0, exported.stderr
    names = zipfile.ZipFile(io.BytesIO(archive.read_bytes())).namelist()
    assert names[0] == "successdiary.json" and sum(n.startswith("media/") for n in names) == 1

    thumb = next(p for p in files if p.name.endswith(".thumb.webp"))
    thumb.unlink()
    missing = run(sqlite_db, "media", "check")
    assert missing.returncode == 1
    assert "missing: " in missing.stdout and "1 photo files are missing" in missing.stderr
