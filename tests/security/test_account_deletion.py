"""SECURITY.md row 27: deleting an account removes every row of the user and revokes sessions."""

import httpx
from sqlalchemy import func, select, text

from app.models import metadata
from app.schemas import EntryCreate
from app.services import entries
from tests.factories import PASSWORD, bearer_token, post_form, sign_in


async def rows_of(session, user_id) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Rows per table that still point at the user (user_id, or id for the user table)."""
    counts = {}
    for table in metadata.sorted_tables:
        column = (
            table.c.get("user_id")
            if "user_id" in table.c
            else table.c.id
            if table.name == "user"
            else None
        )
        if column is not None:
            counts[table.name] = (
                await session.execute(
                    select(func.count()).select_from(table).where(column == user_id)
                )
            ).scalar_one()
    return counts


async def fill(session, user) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        await entries.create_entry(
            session=session, user=user, data=EntryCreate(title=f"win {i}", body="#tag body")
        )


async def test_row27_api_delete_leaves_no_orphans_and_revokes_sessions(
    client: httpx.AsyncClient, session, alice, bob
):
    await fill(session, alice)
    await fill(session, bob)
    token = await bearer_token(client, "alice@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    refused = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": "wrong one"}, headers=auth
    )
    assert refused.status_code == 422 and sum((await rows_of(session, alice.id)).values()) > 0

    response = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=auth
    )

    assert response.status_code == 204
    assert set((await rows_of(session, alice.id)).values()) == {0}
    fts = (
        "SELECT count(*) FROM entry_fts"
        if session.get_bind().dialect.name == "sqlite"
        else "SELECT count(*) FROM entry"
    )
    assert (await session.execute(text(fts))).scalar_one() == 3, (
        "bob's entries (and search index) remain"
    )
    assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 401


async def test_row27_the_settings_page_deletes_the_account_after_the_password(
    client, session, alice
):
    await fill(session, alice)
    await sign_in(client, "alice@example.com")
    wrong = await post_form(
        client, "/settings/delete", {"password": "nope"}, headers={"HX-Request": "true"}
    )
    assert wrong.status_code == 422 and "Your password is not correct." in wrong.text
    done = await post_form(client, "/settings/delete", {"password": PASSWORD})
    assert done.status_code == 303 and done.headers["clear-site-data"] == '"cache", "storage"'
    assert set((await rows_of(session, alice.id)).values()) == {0}
    assert (await client.get("/settings")).status_code == 303
