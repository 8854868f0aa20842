"""One-click unsubscribe from reminders or digests (RFC 8058), with no session.

Each reminder and digest carries `List-Unsubscribe: <BASE_URL/unsubscribe/TOKEN>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`. A mail client POSTs there from its own
server, without cookies or a CSRF token: the signed, single-purpose token (its own salt, one
user and one kind of mail) is the proof, so this path alone skips the CSRF check
(app.security). A GET, which link scanners also make, only shows a page with a button.
"""

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.deps import SessionDep
from app.services import habits
from app.templating import render

router = APIRouter(include_in_schema=False)
PREFIX = "/unsubscribe/"
WHAT = {"reminder": "reminders", "digest": "digests"}


@router.get("/unsubscribe/{token}")
async def confirm(request: Request, token: str) -> Response:
    found = habits.read_unsubscribe_token(request.app.state.settings.secret_key, token)
    if found is None:
        return render(request, "unsubscribe/page.html", {"bad": True}, status_code=404)
    return render(request, "unsubscribe/page.html", {"what": WHAT[found[1]], "token": token})


@router.post("/unsubscribe/{token}")
async def unsubscribe(request: Request, token: str, session: SessionDep) -> Response:
    topic = await habits.unsubscribe(
        session=session, secret=request.app.state.settings.secret_key, token=token
    )
    if topic is None:
        return render(request, "unsubscribe/page.html", {"bad": True}, status_code=404)
    return render(request, "unsubscribe/page.html", {"what": WHAT[topic], "done": True})
