"""Rate limits for authentication (the `limits` library): in memory, or Redis when set.

Failures are counted, not attempts: a person who types the right password is never slowed.
"""

from dataclasses import dataclass
from typing import cast

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

LOGIN_FAILURES_PER_ACCOUNT = parse("20/day")
CODE_FAILURES_PER_ACCOUNT = parse("10/day")
AUTH_FAILURES_PER_IP = parse("20/hour")
EMAIL_CHANGES_PER_ACCOUNT = parse("5/day")  # each one mails a code to a new address


@dataclass(frozen=True)
class Rule:
    limit: RateLimitItem
    key: str


class AuthLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self.storage: Storage = (
            cast(Storage, storage_from_string(_async_uri(redis_url)))
            if redis_url
            else MemoryStorage()
        )
        self.limiter = MovingWindowRateLimiter(self.storage)

    def _login_rules(self, email: str, ip: str) -> list[Rule]:
        return [Rule(LOGIN_FAILURES_PER_ACCOUNT, f"login:{email.lower()}"), self._ip(ip)]

    def _code_rules(self, email: str, ip: str) -> list[Rule]:
        return [Rule(CODE_FAILURES_PER_ACCOUNT, f"code:{email.lower()}"), self._ip(ip)]

    @staticmethod
    def _ip(ip: str) -> Rule:
        return Rule(AUTH_FAILURES_PER_IP, f"ip:{ip}")

    async def _blocked(self, rules: list[Rule]) -> bool:
        for rule in rules:
            if not await self.limiter.test(rule.limit, "auth", rule.key):
                return True
        return False

    async def _hit(self, rules: list[Rule]) -> None:
        for rule in rules:
            await self.limiter.hit(rule.limit, "auth", rule.key)

    async def login_blocked(self, email: str, ip: str) -> bool:
        return await self._blocked(self._login_rules(email, ip))

    async def login_failed(self, email: str, ip: str) -> None:
        await self._hit(self._login_rules(email, ip))

    async def code_blocked(self, email: str, ip: str) -> bool:
        return await self._blocked(self._code_rules(email, ip))

    async def code_failed(self, email: str, ip: str) -> None:
        await self._hit(self._code_rules(email, ip))

    async def email_change_allowed(self, user_id: str) -> bool:
        """Count a request to change the account's address; False once over the daily cap."""
        return await self.limiter.hit(EMAIL_CHANGES_PER_ACCOUNT, "auth", f"email:{user_id}")

    async def forget_login_failures(self, email: str) -> None:
        """After a password reset the account may log in again at once."""
        await self.limiter.clear(LOGIN_FAILURES_PER_ACCOUNT, "auth", f"login:{email.lower()}")

    async def reset(self) -> None:
        await self.storage.reset()


def _async_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
