"""The yardstick: a bare FastAPI JSON endpoint, served by the same gunicorn command as the app.

Each page's throughput is printed as a ratio of this one's, measured in the same run, so the
figures say how much the app costs over the framework on this machine, whatever its speed.
"""

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:  # what LiveServer polls before it returns
        return {"status": "ok"}

    return app
