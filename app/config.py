"""Settings from the environment (and a .env file): one `settings` object."""

import secrets
import sys
from functools import cached_property
from pathlib import Path
from typing import Literal, NoReturn
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
SECRET_FILE = ROOT / ".secret_key"
DEV_SECRET_PLACEHOLDERS = {"", "change-me", "changeme", "secret", "dev"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///./db.sqlite3"
    secret_key: str = ""
    base_url: str = "http://localhost:8000"
    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: bool = False
    smtp_timeout: float = 10.0
    mail_from: str = "SuccessDiary <no-reply@successdiary.local>"
    cookie_secure: bool | None = None
    redis_url: str | None = None
    docs_enabled: bool = True
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_import_bytes: int = Field(default=20_000_000, ge=1024)
    # A request's head (request line and headers): larger gets 431, slower is closed.
    max_header_bytes: int = Field(default=65_536, ge=1024)
    header_timeout_seconds: float = Field(default=30.0, gt=0)
    session_lifetime_seconds: int = 14 * 24 * 3600
    # A session unused for this long is over, however young it is.
    session_idle_seconds: int = Field(default=7 * 24 * 3600, ge=600)
    # json: one object per line for a log collector; text: readable in a terminal.
    log_format: Literal["json", "text"] | None = None
    metrics_token: str | None = None
    # Development only: where the outbox keeps every mail for /dev/mail (default: beside the
    # SQLite database, else under the project folder).
    dev_mail_dir: Path | None = None
    # Exchange rates (app/services/money.py): the ECB's daily reference rates. The history
    # file's address defaults to the daily one's, with eurofxref-hist.xml for its name.
    rates_url: str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
    rates_history_url: str | None = None
    rates_refresh_seconds: int = Field(default=6 * 3600, ge=60)
    # The periodic refresh in the app's lifespan: on in production, off in development (and
    # so in the tests) unless set; `successdiary rates refresh` works in any case.
    rates_refresh: bool | None = None
    # Photos on wins (app/storage.py, app/services/photos.py). Files live in MEDIA_DIR
    # (default: media/ beside the SQLite database, else under the project folder), or in an
    # S3-compatible bucket when MEDIA_S3_BUCKET is set.
    media_dir: Path | None = None
    media_max_bytes: int = Field(default=15_000_000, ge=1024)
    # A decoded image larger than this many pixels is refused (a decompression bomb).
    media_max_pixels: int = Field(default=50_000_000, ge=10_000)
    # What one user's photos (images and thumbnails) may take in all.
    media_quota_bytes: int = Field(default=1_000_000_000, ge=0)
    media_s3_bucket: str | None = None
    media_s3_endpoint: str | None = None
    media_s3_region: str = "us-east-1"
    media_s3_access_key: str | None = None
    media_s3_secret_key: str | None = None
    media_s3_prefix: str = ""
    # The job queue (app/jobs.py): Redis when REDIS_URL is set, else a SQLite file: JOBS_URL
    # (a path or sqlite:///path), by default beside the SQLite database (jobs.sqlite3), or
    # with PostgreSQL, Huey's tables in that database. JOBS_IMMEDIATE runs each job at once in
    # the web process, without retries (the test suite's in-process app only).
    jobs_url: str | None = None
    jobs_immediate: bool = False
    jobs_workers: int = Field(default=4, ge=1, le=64)
    # A failed mail is tried again after this long, 1.5 times longer each time.
    jobs_retry_delay_seconds: float = Field(default=15.0, ge=0.1)
    # A scheduled mail left queued or sending this long (its consumer was killed) is queued
    # again by the next scan.
    jobs_lease_seconds: float = Field(default=300.0, ge=1.0)

    @model_validator(mode="after")
    def _secret_and_cookies(self) -> "Settings":
        if self.environment == "production":
            if (
                self.secret_key.strip().lower() in DEV_SECRET_PLACEHOLDERS
                or len(self.secret_key) < 32
            ):
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production (python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if self.cookie_secure is False:
                raise ValueError(
                    "COOKIE_SECURE=false is refused in production: cookies must be Secure"
                )
        elif not self.secret_key:
            self.secret_key = _local_secret()
        return self

    @cached_property
    def secure_cookies(self) -> bool:
        """Secure cookies unless told otherwise, except in development over plain http."""
        if self.cookie_secure is not None:
            return self.cookie_secure
        return not (self.environment == "development" and self.base_url.startswith("http://"))

    def cookie_name(self, name: str) -> str:
        """`__Host-` cookies may only be set over https, so the prefix follows Secure."""
        return f"__Host-{name}" if self.secure_cookies else name

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def origin_host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def loopback_origins(self) -> bool:
        """Development without a BASE_URL: forms may come from any loopback name of the server
        (uvicorn prints 127.0.0.1, the README says localhost); otherwise only `origin`."""
        return self.dev and "base_url" not in self.model_fields_set

    @property
    def outbox_dir(self) -> Path:
        """Development's kept mail: DEV_MAIL_DIR, else dev-mail/ beside the SQLite file."""
        if self.dev_mail_dir is not None:
            return self.dev_mail_dir
        path = self.database_url.partition(":///")[2].partition("?")[0] if self.is_sqlite else ""
        if path and ":memory:" not in path:
            return Path(path).resolve().parent / "dev-mail"
        return ROOT / "dev-mail"

    @property
    def media_path(self) -> Path:
        """Photos on the local disk: MEDIA_DIR, else media/ beside the SQLite file."""
        if self.media_dir is not None:
            return self.media_dir
        return self._beside_database("media")

    def _beside_database(self, name: str) -> Path:
        path = self.database_url.partition(":///")[2].partition("?")[0] if self.is_sqlite else ""
        if path and ":memory:" not in path:
            return Path(path).resolve().parent / name
        return ROOT / name

    @property
    def history_rates_url(self) -> str:
        return self.rates_history_url or self.rates_url.replace(
            "eurofxref-daily.xml", "eurofxref-hist.xml"
        )

    @property
    def refresh_rates(self) -> bool:
        return self.rates_refresh if self.rates_refresh is not None else not self.dev

    @property
    def dev(self) -> bool:
        return self.environment == "development"

    @property
    def json_logs(self) -> bool:
        """JSON lines unless LOG_FORMAT says otherwise; text by default in development."""
        return (self.log_format or ("text" if self.dev else "json")) == "json"


def _local_secret() -> str:
    """In development, a random key kept in a local file so sessions survive restarts."""
    if SECRET_FILE.exists():
        return SECRET_FILE.read_text().strip()
    key = secrets.token_urlsafe(48)
    SECRET_FILE.write_text(key)
    SECRET_FILE.chmod(0o600)
    return key


def _reason(loc: tuple[int | str, ...], msg: str) -> str:
    field = ".".join(map(str, loc)).upper()
    message = msg.removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def cannot_start(reason: str) -> NoReturn:
    """One line saying why the app cannot start (not a traceback), then exit status 3.

    Exit status 3 is gunicorn's "worker failed to boot": the master stops instead of
    restarting workers that will fail the same way.
    """
    print(f"SuccessDiary cannot start: {reason}", file=sys.stderr, flush=True)
    raise SystemExit(3)


def load_settings() -> Settings:
    """Settings(), or one line saying why the app cannot start (see cannot_start)."""
    try:
        return Settings()
    except ValidationError as exc:
        reasons = "; ".join(_reason(error["loc"], error["msg"]) for error in exc.errors())
        cannot_start(reasons)


def workers_problem(app_settings: Settings, workers: int) -> str | None:
    """Why `workers` processes may not serve with these settings, or None.

    Rate limits live in each worker's memory unless REDIS_URL points them at a shared Redis:
    with 4 workers a guesser would get 4 times the limits, so production refuses it."""
    if app_settings.environment == "production" and workers > 1 and not app_settings.redis_url:
        return (
            f"REDIS_URL must be set to run {workers} workers in production: without it each "
            f"worker keeps its own rate limits, {workers} times the allowed guesses "
            "(set REDIS_URL=redis://host:6379/0, or run one worker)"
        )
    return None


settings = load_settings()
