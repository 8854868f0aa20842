"""Rate limits for authentication and account mail (the `limits` library): in memory, or Redis
when set.

Each try takes its slot before it is judged, in one atomic step per limit (the limiter's `hit`:
a lock in memory, a Lua script in Redis), so concurrent tries can never all pass a check made
before any of them was counted. A right password or code gives its slots back: failures are
what is counted, and a person who types the right password is never slowed (except while other
tries hold every slot, which is what a count taken before the judgement means).

Addresses: IPv4 per address, IPv6 per /64 (what one subscriber is usually given, so one
network cannot spray from fresh addresses), an IPv4-mapped IPv6 address as its IPv4.
"""

import ipaddress
from dataclasses import dataclass
from typing import Any, cast

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

LOGIN_FAILURES_PER_ACCOUNT = parse("20/day")
CODE_FAILURES_PER_ACCOUNT = parse("10/day")
OTP_FAILURES_PER_ACCOUNT = parse("10/day")  # authenticator and recovery codes (second step)
AUTH_FAILURES_PER_IP = parse("20/hour")
EMAIL_CHANGES_PER_ACCOUNT = parse("5/day")  # each one mails a code to a new address
ACCOUNT_MAILS_PER_ADDRESS = parse("5/hour")  # codes, reset links, sign-up notices
CODE_GAP = parse("1/minute")  # a new code replaces the pending one at most once a minute


@dataclass(frozen=True)
class Rule:
    limit: RateLimitItem
    key: str

    @property
    def storage_key(self) -> str:
        return self.limit.key_for("auth", self.key)


def ip_key(ip: str) -> str:
    """The address a limit counts: IPv4 as is, IPv6 by its /64, IPv4-mapped IPv6 as the IPv4."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:  # not an address (a test client's name, "unknown")
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        prefix = ipaddress.IPv6Address(int(address) >> 64 << 64)
        return f"{prefix}/64"
    return str(address)


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
        return Rule(AUTH_FAILURES_PER_IP, f"ip:{ip_key(ip)}")

    async def _take(self, rules: list[Rule]) -> bool:
        """A slot in every rule, or in none: False (nothing kept) when one of them is full."""
        taken: list[Rule] = []
        for rule in rules:
            if not await self.limiter.hit(rule.limit, "auth", rule.key):
                await self._give_back(taken)
                return False
            taken.append(rule)
        return True

    async def _give_back(self, rules: list[Rule]) -> None:
        """Free one slot of each rule (the newest: the window holds the same count either way)."""
        for rule in rules:
            key = rule.storage_key
            if isinstance(self.storage, MemoryStorage):
                async with self.storage.locks[key]:
                    if events := self.storage.events.get(key):
                        del events[0]
            elif isinstance(self.storage, RedisStorage):
                bridge = self.storage.bridge  # every bridge (coredis, redis-py, valkey) has one
                connection = cast(Any, bridge).get_connection()
                await connection.lpop(bridge.prefixed_key(key))
            else:  # pragma: no cover (only memory and Redis are configured)
                raise TypeError(f"cannot give a slot back to {type(self.storage).__name__}")

    async def login_attempt(self, email: str, ip: str) -> bool:
        """Take a try for the account and the address before the password is checked;
        False when either is used up (nothing is taken then)."""
        return await self._take(self._login_rules(email, ip))

    async def login_succeeded(self, email: str, ip: str) -> None:
        """The password was right: its try is given back."""
        await self._give_back(self._login_rules(email, ip))

    async def code_attempt(self, email: str, ip: str) -> bool:
        """Take a try for the account's codes and the address before a code is compared."""
        return await self._take(self._code_rules(email, ip))

    async def code_succeeded(self, email: str, ip: str) -> None:
        await self._give_back(self._code_rules(email, ip))

    def _otp_rules(self, user_id: str, ip: str) -> list[Rule]:
        return [Rule(OTP_FAILURES_PER_ACCOUNT, f"otp:{user_id}"), self._ip(ip)]

    async def otp_attempt(self, user_id: str, ip: str) -> bool:
        """Take a try for the account's second-step codes and the address before a code is
        compared; False once the account had 10 wrong today (then even a right code waits)."""
        return await self._take(self._otp_rules(user_id, ip))

    async def otp_succeeded(self, user_id: str, ip: str) -> None:
        await self._give_back(self._otp_rules(user_id, ip))

    async def email_change_allowed(self, user_id: str) -> bool:
        """Count a request to change the account's address; False once over the daily cap."""
        return await self.limiter.hit(EMAIL_CHANGES_PER_ACCOUNT, "auth", f"email:{user_id}")

    async def code_gap_allowed(self, user_id: str) -> bool:
        """Take the account's turn for a new code: False within a minute of the last one (the
        pending code then stays as it is)."""
        return await self.limiter.hit(CODE_GAP, "auth", f"code-gap:{user_id}")

    async def code_mail_failed(self, user_id: str) -> None:
        """A code that never reached the mailbox does not hold the gap: a resend works at once."""
        await self._give_back([Rule(CODE_GAP, f"code-gap:{user_id}")])

    async def account_mail_allowed(self, address: str) -> bool:
        """Count one account mail to the address; False once it had 5 in the past hour."""
        return await self.limiter.hit(ACCOUNT_MAILS_PER_ADDRESS, "auth", f"mail:{address.lower()}")

    async def forget_login_failures(self, email: str) -> None:
        """After a password reset the account may log in again at once."""
        await self.limiter.clear(LOGIN_FAILURES_PER_ACCOUNT, "auth", f"login:{email.lower()}")

    async def reset(self) -> None:
        if isinstance(self.storage, MemoryStorage) and self.storage.timer is not None:
            self.storage.timer.cancel()  # its sweep would trip over the keys reset removes
        await self.storage.reset()


def _async_uri(redis_url: str) -> str:
    return redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
