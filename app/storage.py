"""Where photo files live: one small interface, a local folder or an S3-compatible bucket.

Keys look like `<user id>/<random>.<ext>` (and `<key>.thumb.webp` for a thumbnail), so one
user's files share a prefix (`delete_prefix` removes an account's files at once). Every
method is blocking: async code calls them through anyio.to_thread (services.photos).
"""

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings

KEY = re.compile(r"[0-9a-f-]{36}/[A-Za-z0-9_-]{8,64}\.[a-z]{3,4}(\.thumb\.webp)?")


class MissingFile(Exception):
    """The storage has no file under that key."""


class Storage(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> Iterator[str]: ...

    def describe(self) -> str: ...


def checked(key: str) -> str:
    """Keys are made by us; anything else (a path with ..) never reaches a folder or bucket."""
    if not KEY.fullmatch(key):
        raise ValueError(f"not a media key: {key!r}")
    return key


class LocalStorage:
    """A folder on this machine: each file written to a temporary name, synced and renamed,
    so a reader (or a crash) never sees half a file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return f"folder {self.root}"

    def _path(self, key: str) -> Path:
        return self.root / checked(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise MissingFile(key) from None

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    yield key


class S3Storage:
    """An S3-compatible bucket (AWS, MinIO, Garage, moto's server in the tests)."""

    def __init__(self, settings: Settings) -> None:
        import boto3  # only when a bucket is configured
        from botocore.config import Config

        assert settings.media_s3_bucket
        self.bucket = settings.media_s3_bucket
        self.prefix = settings.media_s3_prefix
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.media_s3_endpoint or None,
            region_name=settings.media_s3_region,
            aws_access_key_id=settings.media_s3_access_key,
            aws_secret_access_key=settings.media_s3_secret_key,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )

    def describe(self) -> str:
        return f"bucket {self.bucket}"

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + checked(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + checked(key))
        except self.client.exceptions.NoSuchKey:
            raise MissingFile(key) from None
        return bytes(answer["Body"].read())

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + checked(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]


def delete_prefix(storage: Storage, prefix: str) -> int:
    """Remove every file under the prefix (an account's folder); how many went."""
    gone = 0
    for key in list(storage.keys(prefix)):
        storage.delete(key)
        gone += 1
    return gone


_made: dict[tuple[object, ...], Storage] = {}


def storage_for(settings: Settings) -> Storage:
    """The storage these settings name (one client per configuration and process)."""
    ident = (
        settings.media_s3_bucket,
        settings.media_s3_endpoint,
        settings.media_s3_prefix,
        settings.media_s3_access_key,
        str(settings.media_path),
    )
    if ident not in _made:
        _made[ident] = (
            S3Storage(settings) if settings.media_s3_bucket else LocalStorage(settings.media_path)
        )
    return _made[ident]
