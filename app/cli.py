"""Management commands: `successdiary <command>` or `python -m app <command>`.

create-user, export and import for one user, backup and restore of the whole database (and
the photo folder), move-db to copy a SQLite database into PostgreSQL, rates refresh for
exchange rates, media check for photo files without a row (removed) or rows without a
file (reported), and worker to run the job queue (mail, reminders, digests, housekeeping).
DATABASE_URL (or .env) says which database, MEDIA_DIR / MEDIA_S3_* where the photos are.
"""

import argparse
import asyncio
import getpass
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tqdm import tqdm

from app.auth import password_helper, password_problem
from app.config import ROOT, settings
from app.db import dispose, make_engine, make_sessionmaker, sync_url
from app.models import User, metadata
from app.services import categories, export, importer, money, photos
from app.services.accounts import normalise_email, user_by_email
from app.storage import storage_for

T = TypeVar("T")


class CommandError(Exception):
    pass


async def _with_session(work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    engine = make_engine(settings.database_url)
    try:
        return await work(make_sessionmaker(engine))
    finally:
        await dispose(engine)


async def _user(session: AsyncSession, email: str) -> User:
    user = await user_by_email(session, email)
    if user is None:
        raise CommandError(f"no account for {email}")
    return user


def create_user(args: argparse.Namespace) -> str:
    password = (
        sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    )
    if problem := password_problem(password, args.email):
        raise CommandError(problem)

    async def work(maker: async_sessionmaker[AsyncSession]) -> str:
        async with maker() as session:
            if await user_by_email(session, args.email):
                raise CommandError(f"{args.email} already has an account")
            user = User(
                email=normalise_email(args.email),
                hashed_password=password_helper.hash(password),
                is_verified=True,
            )
            session.add(user)
            await session.flush()
            categories.add_defaults(session, user)
            await session.commit()
        return f"created {user.email} (verified)"

    return str(asyncio.run(_with_session(work)))


def export_user(args: argparse.Namespace) -> str:
    async def work(maker: async_sessionmaker[AsyncSession]) -> str:
        async with maker() as session:
            user = await _user(session, args.email)
        size = 0
        bar = tqdm(unit="B", unit_scale=True, desc="export")
        with open(args.output, "wb") as out, bar:  # noqa: ASYNC230 (a one-shot command)
            async for chunk in export.EXPORTERS[args.format](maker, user, storage_for(settings)):
                out.write(chunk)
                size += len(chunk)
                bar.update(len(chunk))
        return f"wrote {size:,} bytes to {args.output}"

    return str(asyncio.run(_with_session(work)))


def import_user(args: argparse.Namespace) -> str:
    content = Path(args.file).read_bytes()

    async def work(maker: async_sessionmaker[AsyncSession]) -> str:
        async with maker() as session:
            user = await _user(session, args.email)
            try:
                plan = importer.read_file(Path(args.file).name, content, user)
            except importer.ImportProblem as exc:
                raise CommandError("\n".join(exc.errors)) from exc
            plan = await importer.preview(session=session, user=user, plan=plan)
            with tqdm(total=len(plan.items), unit="entry", desc="import") as bar:

                async def progress(done: int, total: int) -> None:
                    bar.update(done - bar.n)

                added = await importer.import_plan(
                    session=session,
                    user=user,
                    plan=plan,
                    progress=progress,
                    media=storage_for(settings),
                    settings=settings,
                )
        return f"{plan.source}: imported {added} entries, skipped {plan.duplicates} already there"

    return str(asyncio.run(_with_session(work)))


def _sqlite_path(url: str) -> Path:
    database = make_url(sync_url(url)).database
    if not database:
        raise CommandError("this SQLite URL names no file")
    return Path(database) if Path(database).is_absolute() else ROOT / database


def _check_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        result = db.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise CommandError(f"{path}: integrity_check says {result}")


def _libpq(url: str) -> str:
    return (
        make_url(sync_url(url)).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def _media_beside(path: Path) -> Path:
    """Where a backup keeps the photo folder: `<backup>.media/` beside it."""
    return path.with_name(path.name + ".media")


def _backup_media(output: Path) -> str:
    if settings.media_s3_bucket:
        return f"; photos stay in the bucket {settings.media_s3_bucket} (back it up there)"
    source = settings.media_path
    if not source.is_dir():
        return ""
    shutil.copytree(source, _media_beside(output), dirs_exist_ok=False)
    return f"; photos copied to {_media_beside(output)}"


def backup(args: argparse.Namespace) -> str:
    url, output = settings.database_url, Path(args.output)
    if _media_beside(output).exists():
        raise CommandError(f"{_media_beside(output)} exists already")
    if url.startswith("sqlite"):
        if output.exists():
            raise CommandError(f"{output} exists already")
        with sqlite3.connect(_sqlite_path(url)) as db:  # online: writers may keep going
            db.execute("VACUUM INTO ?", (str(output),))
        _check_sqlite(output)
        return f"backed up to {output} (integrity_check ok)" + _backup_media(output)
    # The operator's own DATABASE_URL and file name: no untrusted input reaches these commands.
    subprocess.run(["pg_dump", "--format=custom", "--file", str(output), _libpq(url)], check=True)
    return f"backed up to {output} (pg_dump custom format)" + _backup_media(output)


def _restore_media(source: Path) -> str:
    kept = _media_beside(source)
    if settings.media_s3_bucket or not kept.is_dir():
        return ""
    target = settings.media_path
    if target.exists():
        old = target.with_name(target.name + ".before-restore")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    shutil.copytree(kept, target)
    return f"; photos restored into {target}"


def restore(args: argparse.Namespace) -> str:
    url, source = settings.database_url, Path(args.input)
    if url.startswith("sqlite"):
        _check_sqlite(source)
        target = _sqlite_path(url)
        if target.exists():
            shutil.copy2(target, target.with_suffix(target.suffix + ".before-restore"))
        for suffix in ("-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copy2(source, target)
        return (
            f"restored {target} from {source} (old file kept as .before-restore); restart the app"
            + _restore_media(source)
        )
    subprocess.run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--dbname",
            _libpq(url),
            str(source),
        ],
        check=True,
    )
    return f"restored from {source}" + _restore_media(source)


def move_db(args: argparse.Namespace) -> str:
    """Copy every table from a SQLite database into an empty, migrated PostgreSQL one."""
    source_url, target_url = sync_url(args.source), sync_url(args.target)
    if not source_url.startswith("sqlite") or not target_url.startswith("postgresql"):
        raise CommandError("move-db copies a SQLite database (--from) into PostgreSQL (--to)")
    subprocess.run(
        [
            str(Path(sys.executable).parent / "alembic"),
            "-x",
            f"url={target_url}",
            "upgrade",
            "head",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    source, target = create_engine(source_url), create_engine(target_url)
    counts = {}
    with source.connect() as src, target.begin() as dst:
        for table in metadata.sorted_tables:
            if dst.execute(select(func.count()).select_from(table)).scalar_one():
                raise CommandError(f"the target's {table.name} table is not empty")
        for table in metadata.sorted_tables:
            total = src.execute(select(func.count()).select_from(table)).scalar_one()
            with tqdm(total=total, unit="row", desc=table.name) as bar:
                for batch in src.execute(select(table)).mappings().partitions(1000):
                    dst.execute(table.insert(), [dict(row) for row in batch])
                    bar.update(len(batch))
            counts[table.name] = total
            if (
                "id" in table.c
                and table.c.id.autoincrement is True
                and str(table.c.id.type) == "INTEGER"
            ):
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                        f"COALESCE((SELECT MAX(id) FROM {table.name}), 0) + 1, false)"
                    )
                )
    with target.connect() as dst:
        for name, expected in counts.items():
            found = dst.execute(
                select(func.count()).select_from(metadata.tables[name])
            ).scalar_one()
            if found != expected:
                raise CommandError(f"{name}: copied {found} rows but the source has {expected}")
    source.dispose()
    target.dispose()
    return (
        "moved; row counts match: "
        + ", ".join(f"{n} {c}" for n, c in counts.items())
        + (_move_media(args.source, args.target))
    )


def _move_media(source_url: str, target_url: str) -> str:
    """The photo folder follows the database when it lived beside the SQLite file (the
    default): copied to where the PostgreSQL settings will look for it."""
    if settings.media_s3_bucket or settings.media_dir is not None:
        return ""
    before = settings.model_copy(update={"database_url": source_url}).media_path
    after = settings.model_copy(update={"database_url": target_url}).media_path
    if before == after or not before.is_dir():
        return ""
    shutil.copytree(before, after, dirs_exist_ok=True)
    return f"; photos copied from {before} to {after} (or set MEDIA_DIR={before})"


def media_check(args: argparse.Namespace) -> str:
    """Files without a row are removed (unless --dry-run); rows without a file are reported."""
    storage = storage_for(settings)

    async def work(maker: async_sessionmaker[AsyncSession]) -> photos.MediaReport:
        async with maker() as session:
            known = await photos.all_keys(session)
        return await asyncio.to_thread(
            photos.media_check_sync, storage, known, remove=not args.dry_run
        )

    report = asyncio.run(_with_session(work))
    lines = [f"{storage.describe()}: {report.files} files"]
    verb = "orphan (would remove)" if args.dry_run else "orphan removed"
    lines += [f"{verb}: {key}" for key in report.orphans]
    lines += [f"missing: {key}" for key in report.missing]
    lines.append(f"{len(report.orphans)} orphans, {len(report.missing)} missing")
    if report.missing:
        print("\n".join(lines))
        raise CommandError(f"{len(report.missing)} photo files are missing")
    return "\n".join(lines)


def refresh_rates(args: argparse.Namespace) -> str:
    """Fetch the ECB's rates (RATES_URL, or the full history) and store them."""

    async def work(maker: async_sessionmaker[AsyncSession]) -> str:
        async with maker() as session:
            try:
                done = await money.refresh(
                    session=session, settings=settings, history="full" if args.history else None
                )
            except money.RatesProblem as exc:
                raise CommandError(f"{exc} (the stored rates are kept)") from exc
        return f"rates up to {done.latest}: {done.changed} rows added or changed"

    return str(asyncio.run(_with_session(work)))


def worker(args: argparse.Namespace) -> str:
    """The job queue's consumer and scheduler (app/jobs.py), until SIGINT or SIGTERM."""
    from app.jobs import run_worker
    from app.observability import configure_logging

    configure_logging(settings.json_logs)
    run_worker(settings, args.workers)
    return "worker stopped"


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="successdiary", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    p = commands.add_parser("create-user", help="create a verified account")
    p.add_argument("email")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(run=create_user)
    p = commands.add_parser("export", help="export one user's diary")
    p.add_argument("email")
    p.add_argument("--format", choices=sorted(export.EXPORTERS), default="json")
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(run=export_user)
    p = commands.add_parser(
        "import", help="import a SuccessDiary, Day One or jrnl export for one user"
    )
    p.add_argument("email")
    p.add_argument("file")
    p.set_defaults(run=import_user)
    p = commands.add_parser(
        "backup",
        help="back up the database (SQLite: VACUUM INTO + integrity_check; PostgreSQL: pg_dump)",
    )
    p.add_argument("output")
    p.set_defaults(run=backup)
    p = commands.add_parser(
        "restore", help="restore a backup made by `backup` (stop the app first)"
    )
    p.add_argument("input")
    p.set_defaults(run=restore)
    p = commands.add_parser(
        "move-db", help="copy a SQLite database into an empty PostgreSQL one and check row counts"
    )
    p.add_argument("--from", dest="source", default=settings.database_url)
    p.add_argument("--to", dest="target", required=True)
    p.set_defaults(run=move_db)
    p = commands.add_parser("rates", help="exchange rates (the ECB's reference rates)")
    rates = p.add_subparsers(dest="rates_command", required=True)
    p = rates.add_parser("refresh", help="fetch the latest rates from RATES_URL and store them")
    p.add_argument(
        "--history", action="store_true", help="fetch the full history (RATES_HISTORY_URL)"
    )
    p.set_defaults(run=refresh_rates)
    p = commands.add_parser("media", help="photo files (MEDIA_DIR or the MEDIA_S3_BUCKET)")
    media = p.add_subparsers(dest="media_command", required=True)
    p = media.add_parser(
        "check", help="remove files no photo row names (orphans); report rows whose file is gone"
    )
    p.add_argument("--dry-run", action="store_true", help="only report the orphans")
    p.set_defaults(run=media_check)
    p = commands.add_parser(
        "worker", help="run the job queue: mail, reminders, digests, housekeeping"
    )
    p.add_argument("--workers", type=int, default=None, help="threads (default JOBS_WORKERS)")
    p.set_defaults(run=worker)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        print(args.run(args))
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
