"""The shell a phone user meets, checked on the server's HTML: installable (manifest, icons,
theme colour, a description on every page), dark from the server, error pages that keep the
user, search that counts and shows plain words, #tags as links, deleting that asks first without
JavaScript, and a categories page with unique ids that keeps what was typed."""

import re
import struct
from collections import Counter
from html.parser import HTMLParser

import httpx
from sqlalchemy import select

from app.config import ROOT
from app.models import Category, Entry
from tests.factories import post_form

HTMX = {"HX-Request": "true"}
HTML = {"Accept": "text/html"}


class Tags(HTMLParser):
    """Every start tag with its attributes, duplicates kept."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [
            dict(attrs)
            for name, attrs in self.found
            if name == tag and all(dict(attrs).get(k) == v for k, v in wanted.items())
        ]


async def add(client: httpx.AsyncClient, title: str, body: str = "", **fields: str) -> int:
    response = await post_form(client, "/entries", {"title": title, "body": body, **fields})
    assert response.status_code == 303, response.text
    page = await client.get("/entries")
    ids = re.findall(r'<article id="entry-(\d+)"', page.text)
    return max(int(i) for i in ids)


async def category_names(session) -> set[str]:  # type: ignore[no-untyped-def]
    rows = await session.execute(select(Category.name).execution_options(populate_existing=True))
    return set(rows.scalars())


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a real PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_manifest_is_served_from_our_origin_with_what_installing_needs(client):
    response = await client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = response.json()
    assert manifest["name"] == "SuccessDiary" and 0 < len(manifest["short_name"]) <= 12
    assert manifest["start_url"].startswith("/") and manifest["display"] == "standalone"
    assert re.fullmatch(r"#[0-9a-f]{6}", manifest["theme_color"])
    sizes = {(icon["sizes"], icon["purpose"]) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert icon["src"].startswith("/static/icons/") and icon["type"] == "image/png"
        served = await client.get(icon["src"])
        assert served.status_code == 200 and served.headers["content-type"] == "image/png"
        size = int(icon["sizes"].split("x")[0])
        assert png_size(served.content) == (size, size)


ANON_PAGES = ["/", "/login", "/register", "/forgot-password", "/no-such-page"]
USER_PAGES = [
    "/",
    "/entries",
    "/entries/new",
    "/entries/{id}",
    "/entries/{id}/edit",
    "/entries/{id}/delete",
    "/categories",
    "/categories/{cat}/delete",
    "/dashboard",
    "/review",
    "/settings",
    "/export",
    "/entries/999999",
]


def head_of(html: str) -> Tags:
    return Tags(html.split("</head>")[0])


def assert_installable_head(html: str, path: str) -> None:
    head = head_of(html)
    descriptions = head.all("meta", name="description")
    assert len(descriptions) == 1 and len(descriptions[0]["content"] or "") > 20, path
    assert head.all("meta", name="theme-color"), path
    assert head.all("link", rel="manifest", href="/manifest.webmanifest"), path
    touch = head.all("link", rel="apple-touch-icon")
    assert touch and (touch[0]["href"] or "").endswith(".png"), path


async def test_every_page_is_installable_and_has_a_description(client, alice_client, session):
    for path in ANON_PAGES:
        async with httpx.AsyncClient(
            transport=client._transport, base_url="http://testserver"
        ) as anon:
            response = await anon.get(path, headers=HTML)
        assert response.status_code in (200, 404), path
        assert_installable_head(response.text, path)
    entry_id = await add(alice_client, "A win")
    cat = (await session.execute(select(Category.id).limit(1))).scalar_one()
    for path in USER_PAGES:
        url = path.format(id=entry_id, cat=cat)
        response = await alice_client.get(url, headers=HTML)
        assert response.status_code in (200, 404), url
        assert_installable_head(response.text, url)


def html_tag(html: str) -> dict[str, str | None]:
    return Tags(html).all("html")[0]


async def test_the_server_renders_dark_for_a_user_who_chose_dark(alice_client):
    page = await alice_client.get("/entries")
    assert "dark" not in (html_tag(page.text).get("class") or "").split()
    await post_form(alice_client, "/settings/theme", {"theme": "dark"})
    for path in ("/entries", "/categories", "/"):
        page = await alice_client.get(path)
        assert html_tag(page.text).get("class") == "dark", path
    await post_form(alice_client, "/settings/theme", {"theme": "light"})
    page = await alice_client.get("/entries")
    assert "dark" not in (html_tag(page.text).get("class") or "").split()
    assert html_tag(page.text)["data-theme"] == "light"


def test_the_css_dark_variant_follows_the_class_the_server_sets():
    css = (ROOT / "static/css/app.css").read_text()
    assert ":is(.dark *)" in css, "tailwind's darkMode must key on the dark class"
    assert "[data-theme=system]" in css, "and on the system setting without JavaScript"


async def test_a_404_keeps_the_signed_in_users_navigation_and_theme(alice_client, client):
    await post_form(alice_client, "/settings/theme", {"theme": "dark"})
    for path in ("/no-such-page", "/entries/999999"):
        page = await alice_client.get(path, headers=HTML)
        assert page.status_code == 404
        assert html_tag(page.text).get("class") == "dark", path
        nav = Tags(page.text)
        assert nav.all("a", href="/export") and nav.all("a", href="/entries/new"), path
        assert "Sign out" in page.text and "Sign in" not in page.text
    client.cookies.clear()
    anon = await client.get("/no-such-page", headers=HTML)
    assert anon.status_code == 404 and "Sign in" in anon.text and "Sign out" not in anon.text
    client.cookies.set("sd_session", "a-session-that-does-not-exist")
    stale = await client.get("/no-such-page", headers=HTML)
    assert stale.status_code == 404 and "Sign in" in stale.text


def results_of(html: str) -> str:
    return html.split('id="results"')[1]


async def test_search_counts_all_matches_and_shows_snippets_without_markdown(alice_client):
    await add(
        alice_client,
        "Marathon day",
        "# Race\n> **Finished** the _marathon_ in `3:59` [log](https://example.com/log) ~~slow~~",
    )
    for n in range(22):
        await add(alice_client, f"Run {n}", "Another marathon training run.")
    page = await alice_client.get("/entries", params={"q": "marathon"})
    results = results_of(page.text)
    assert "23 wins match “marathon”" in results
    assert results.count("<article") == 20, "one page, the count is for all of them"
    snippets = re.findall(r'<p class="mt-2 text-sm[^"]*">(.*?)</p>', results, re.S)
    assert snippets
    for snippet in snippets:
        text = re.sub(r"</?mark>", "", snippet)
        for mark in ("**", "# ", "> ", "`", "](", "~~", "_marathon_", "&gt;"):
            assert mark not in text, (mark, text)
    assert any(
        "Race Finished the marathon in 3:59 log slow" in re.sub(r"</?mark>", "", s)
        for s in snippets
    )
    one = await alice_client.get("/entries", params={"q": "finished"}, headers=HTMX)
    assert "1 win matches “finished”" in one.text


async def test_inline_tags_are_links_to_the_tag_filter(alice_client):
    entry_id = await add(
        alice_client, "Sold", "Closed a deal #sales, see `#notatag` and [x](https://e.com/#frag)"
    )
    link = '<a href="/entries?tag=sales" class="tag-link">#sales</a>'
    assert link in (await alice_client.get("/entries")).text
    assert link in (await alice_client.get(f"/entries/{entry_id}")).text
    found = await alice_client.get("/entries", params={"q": "closed"})
    assert 'href="/entries?tag=sales" class="tag-link">#' in results_of(found.text)
    detail = (await alice_client.get(f"/entries/{entry_id}")).text
    assert "<code>#notatag</code>" in detail and 'href="https://e.com/#frag"' in detail


async def test_the_entry_page_has_an_h1_title_and_an_absolute_date(alice_client):
    entry_id = await add(alice_client, "Won the pitch", day="2026-03-02")
    page = await alice_client.get(f"/entries/{entry_id}")
    assert re.search(r"<h1[^>]*>Won the pitch</h1>", page.text)
    assert '<time datetime="2026-03-02">Monday 2 March 2026</time>' in page.text


async def test_deleting_an_entry_without_javascript_asks_once_then_offers_undo(
    alice_client, session
):
    entry_id = await add(alice_client, "Keep or not")
    listing = Tags((await alice_client.get("/entries")).text)
    assert listing.all("a", href=f"/entries/{entry_id}/delete"), "Delete opens the question"
    assert not listing.all("form", action=f"/entries/{entry_id}/delete"), "not a delete at once"
    assert "hx-confirm" not in (await alice_client.get("/entries")).text, "asked once, not twice"
    question = await alice_client.get(f"/entries/{entry_id}/delete")
    assert question.status_code == 200 and "<html" in question.text
    assert "Delete “Keep or not”?" in question.text
    assert Tags(question.text).all("form", action=f"/entries/{entry_id}/delete", method="post")
    assert (await session.get(Entry, entry_id)).deleted_at is None, "asking deletes nothing"
    fragment = await alice_client.get(f"/entries/{entry_id}/delete", headers=HTMX)
    assert "<html" not in fragment.text and f'id="entry-{entry_id}"' in fragment.text
    done = await post_form(alice_client, f"/entries/{entry_id}/delete", {})
    assert done.status_code == 303
    after = await alice_client.get("/entries")
    assert Tags(after.text).all("form", action=f"/entries/{entry_id}/restore")
    other = await alice_client.get("/entries/424242/delete")
    assert other.status_code == 404


async def test_deleting_a_category_without_javascript_asks_once(alice_client, session):
    cat = (await session.execute(select(Category).where(Category.name == "Work"))).scalar_one()
    page = Tags((await alice_client.get("/categories")).text)
    assert page.all("a", href=f"/categories/{cat.id}/delete")
    assert not page.all("form", action=f"/categories/{cat.id}/delete")
    assert "hx-confirm" not in (await alice_client.get("/categories")).text
    question = await alice_client.get(f"/categories/{cat.id}/delete")
    assert question.status_code == 200 and "Delete the category “Work”?" in question.text
    assert Tags(question.text).all("form", action=f"/categories/{cat.id}/delete", method="post")
    assert "Work" in await category_names(session), "asking deletes nothing"
    fragment = await alice_client.get(f"/categories/{cat.id}/delete", headers=HTMX)
    assert "<html" not in fragment.text
    done = await post_form(alice_client, f"/categories/{cat.id}/delete", {})
    assert done.status_code == 303
    assert "Work" not in await category_names(session)


async def test_merging_a_category_asks_once_then_moves_the_entries(alice_client, session):
    names = dict((await session.execute(select(Category.name, Category.id))).all())
    work, health = names["Work"], names["Health"]
    await add(alice_client, "Filed under work", category_id=str(work))
    question = await post_form(alice_client, f"/categories/{work}/merge", {"into": str(health)})
    assert question.status_code == 200 and "Merge “Work” into “Health”?" in question.text
    assert "Its 1 entry moves to Health, and Work is deleted." in question.text
    form = Tags(question.text)
    assert form.all("input", name="confirmed", value="yes")
    assert form.all("input", name="into", value=str(health))
    assert "Work" in await category_names(session), "asking merges nothing"
    inline = await post_form(
        alice_client, f"/categories/{work}/merge", {"into": str(health)}, headers=HTMX
    )
    assert "<html" not in inline.text and inline.headers["hx-retarget"] == f"#category-{work}"
    done = await post_form(
        alice_client, f"/categories/{work}/merge", {"into": str(health), "confirmed": "yes"}
    )
    assert done.status_code == 303 and "Work" not in await category_names(session)
    moved = await session.execute(
        select(Entry.category_id).execution_options(populate_existing=True)
    )
    assert moved.scalar_one() == health


async def test_the_categories_page_has_no_duplicate_ids(alice_client):
    await post_form(alice_client, "/categories", {"name": "", "colour": "#123456"})
    for page in (
        (await alice_client.get("/categories")).text,
        (await post_form(alice_client, "/categories", {"name": ""})).text,
    ):
        ids: list[str] = []
        for tag, attrs in Tags(page).found:
            names = [name for name, _ in attrs]
            assert names.count("id") <= 1, (tag, attrs)
            ids += [value or "" for name, value in attrs if name == "id"]
        assert [i for i, n in Counter(ids).items() if n > 1] == []
        labels = [dict(a).get("for") for t, a in Tags(page).found if t == "label"]
        assert set(labels) <= set(ids), "every label names a field on the page"


async def test_a_rename_error_keeps_what_was_typed(alice_client, session):
    work = (await session.execute(select(Category).where(Category.name == "Work"))).scalar_one()
    typed = "W" * 60
    for headers in ({}, HTMX):
        response = await post_form(
            alice_client,
            f"/categories/{work.id}",
            {"name": typed, "colour": "#123456"},
            headers=headers,
        )
        assert response.status_code == 422
        field = Tags(response.text).all("input", id=f"name-{work.id}")[0]
        assert field["value"] == typed and field["aria-invalid"] == "true"
        assert Tags(response.text).all("input", id=f"colour-{work.id}")[0]["value"] == "#123456"
    taken = await post_form(alice_client, f"/categories/{work.id}", {"name": "Health"})
    assert taken.status_code == 422
    assert Tags(taken.text).all("input", id=f"name-{work.id}")[0]["value"] == "Health"
    new = await post_form(alice_client, "/categories", {"name": "Health", "colour": "#abcdef"})
    assert new.status_code == 422
    assert Tags(new.text).all("input", id="new-name")[0]["value"] == "Health"
    assert Tags(new.text).all("input", id="new-colour")[0]["value"] == "#abcdef"
    assert "Work" in await category_names(session) and typed not in await category_names(session)


async def test_the_shell_gives_one_tap_to_a_new_win_and_reaches_export(alice_client):
    page = Tags((await alice_client.get("/dashboard")).text)
    assert page.all("nav", **{"aria-label": "Quick actions"})
    assert page.all("a", href="/entries/new", **{"class": "bottom-win"})
    assert page.all("a", href="/entries#q"), "search in one tap, above the composer"
    assert page.all("a", href="/export"), "Export is in the navigation"


async def test_htmx_never_settles_a_style_attribute(client):
    page = await client.get("/")
    config = Tags(page.text).all("meta", name="htmx-config")[0]["content"] or ""
    import json

    settle = json.loads(config)["attributesToSettle"]
    assert "style" not in settle and "class" in settle
