"""POST /api/v1/import: our JSON, Day One (zip or json) or jrnl JSON; all of it or nothing."""

from fastapi import APIRouter, HTTPException, Request, UploadFile
from pydantic import BaseModel, Field

from app.deps import CurrentUser, SessionDep
from app.services import importer
from app.services.importer import ImportProblem
from app.web import read_upload


class ImportResult(BaseModel):
    source: str
    entries: int
    duplicates: int
    new_categories: list[str]
    merged_categories: list[str] = Field(
        description="Names filed under an existing or earlier category that differs only by "
        "case or spaces, as `work → Work`."
    )
    imported: bool


router = APIRouter(tags=["export"])


@router.post(
    "/import",
    responses={422: {"description": "IMPORT_INVALID: `errors` says which file, entry and field"}},
)
async def import_file(
    request: Request,
    file: UploadFile,
    user: CurrentUser,
    session: SessionDep,
    dry_run: bool = False,
) -> ImportResult:
    """Check the file and report what it holds (`dry_run=true`), or import it in one transaction.
    Entries already in your diary (same day, title and body) are skipped."""
    try:
        content = await read_upload(request, file)
        plan = importer.read_file(file.filename or "upload", content, user)
        plan = await importer.preview(session=session, user=user, plan=plan)
        if not dry_run:
            state = request.app.state
            await importer.import_plan(
                session=session, user=user, plan=plan, media=state.media, settings=state.settings
            )
    except ImportProblem as exc:
        raise HTTPException(422, {"code": "IMPORT_INVALID", "errors": exc.errors}) from exc
    return ImportResult(
        source=plan.source,
        entries=len(plan.items),
        duplicates=plan.duplicates,
        new_categories=plan.new_categories,
        merged_categories=plan.merged_categories,
        imported=not dry_run,
    )
