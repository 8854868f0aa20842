"""Photos on wins: one row per stored image, its file (and thumbnail) in app.storage.

The row is written only after both files are stored (services.photos), so a crash can leave
an orphan file (found and removed by `successdiary media check`) but never a row without
its file. `sha256` is the stored bytes' hash: it is in the image's URL, so the URL of a
photo never names other bytes and a browser may cache it for good.
"""

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from app.models.base import GUID, TIMESTAMPAware, utcnow


class Photo(SQLModel, table=True):
    __tablename__ = "photo"
    __table_args__ = (
        Index("ix_photo_entry_position", "entry_id", "position"),
        Index("ix_photo_user", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: uuid.UUID = Field(sa_type=GUID, foreign_key="user.id", ondelete="CASCADE")
    entry_id: int = Field(foreign_key="entry.id", ondelete="CASCADE")
    position: int = 0
    key: str = Field(max_length=200)  # the image's storage key; the thumbnail's is key.thumb
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=50)
    width: int
    height: int
    bytes: int
    thumb_width: int
    thumb_height: int
    thumb_bytes: int
    alt: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=TIMESTAMPAware(timezone=True))

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.content_type, "bin")

    @property
    def thumb_key(self) -> str:
        return f"{self.key}.thumb.webp"

    @property
    def url(self) -> str:
        return f"/photos/{self.id}/{self.sha256[:20]}.{self.extension}"

    @property
    def thumbnail_url(self) -> str:
        return f"/photos/{self.id}/{self.sha256[:20]}-thumb.webp"

    @property
    def file_name(self) -> str:
        """The name in exports and downloads: the content hash, so it is safe anywhere."""
        return f"{self.sha256[:20]}.{self.extension}"


EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
