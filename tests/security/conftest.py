import os

import pytest

from app.ratelimit import AuthLimiter


@pytest.fixture
async def redis_url() -> str:
    """A scratch Redis database; the tests that need it skip when no Redis answers."""
    url = os.environ.get("REDIS_URL_TEST", "redis://127.0.0.1:6379/15")
    if not await AuthLimiter(url).storage.check():
        if os.environ.get("REDIS_URL_TEST"):
            pytest.fail(f"REDIS_URL_TEST is set but {url} does not answer")
        pytest.skip("no Redis server to share rate limits through")
    return url
