"""Steps the two-step sign-in tests share: turn TOTP on through the API, compute codes at the
frozen clock's time step, sign in through the pages, and a software WebAuthn authenticator
(real P-256 keys, real CBOR, real signatures) for driving passkeys without a browser."""

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cbor2
import httpx
import pyotp
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.factories import PASSWORD, bearer_token, csrf_token, post_form

# A fixed instant at the start of a 30-second step, so shifting by 30 s is the next step.
START = "2026-12-02 09:00:00+00:00"


def at(secret: str, when: datetime | float) -> str:
    """The code an authenticator app shows at `when`."""
    return pyotp.TOTP(secret).at(when)


def now_code(secret: str) -> str:
    return pyotp.TOTP(secret).now()


async def turn_on_totp(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> tuple[str, list[str], dict[str, str]]:
    """Set up and enable TOTP through the API: (secret, recovery codes, the bearer headers)."""
    headers = {"Authorization": f"Bearer {await bearer_token(client, email, password)}"}
    setup = await client.post(
        "/api/v1/users/me/totp/setup", json={"current_password": password}, headers=headers
    )
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    enabled = await client.post(
        "/api/v1/users/me/totp/enable", json={"code": now_code(secret)}, headers=headers
    )
    assert enabled.status_code == 200, enabled.text
    return secret, enabled.json()["recovery_codes"], headers


async def api_login(
    client: httpx.AsyncClient, email: str, otp: str | None = None, password: str = PASSWORD
) -> httpx.Response:
    data = {"username": email, "password": password}
    if otp is not None:
        data["otp"] = otp
    return await client.post("/api/v1/auth/bearer/login", data=data)


async def password_step(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    return await post_form(client, "/login", {"email": email, "password": password, "next": next})


async def code_step(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await post_form(client, "/login/second-step", {"code": code})


def session_cookie_set(response: httpx.Response) -> bool:
    return any(
        h.startswith("sd_session=") and "Max-Age=0" not in h and '=""' not in h
        for h in response.headers.get_list("set-cookie")
    )


async def post_json(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    """A page's fetch(): JSON with the CSRF header and our own Origin."""
    headers = {"X-CSRFToken": await csrf_token(client), "Origin": "http://testserver"}
    return await client.post(url, json=body, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftAuthenticator:
    """A platform authenticator in software: one discoverable ES256 credential, user verified."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    sign_count: int = 0
    user_handle: bytes = b""

    def _client_data(self, kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict[str, Any], origin: str, rp_id: str | None = None) -> dict:
        rp_id = rp_id or options["rp"]["id"]
        self.user_handle = unb64url(options["user"]["id"])
        numbers = self.key.public_key().public_numbers()
        cose = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([0x01 | 0x04 | 0x40])  # user present, user verified, attested data
            + self.sign_count.to_bytes(4, "big")
            + attested
            + cose
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(self, options: dict[str, Any], origin: str, rp_id: str) -> dict:
        self.sign_count += 1
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([0x01 | 0x04])
            + self.sign_count.to_bytes(4, "big")
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self.key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle),
            },
            "clientExtensionResults": {},
        }


ORIGIN = "http://testserver"
RP_ID = "testserver"


async def add_passkey(
    client: httpx.AsyncClient,
    authenticator: SoftAuthenticator,
    name: str = "Laptop",
    origin: str = ORIGIN,
    rp_id: str = RP_ID,
) -> httpx.Response:
    """Register the authenticator's credential from the settings page (signed in)."""
    options = await post_json(client, "/settings/passkeys/options", {})
    assert options.status_code == 200, options.text
    body = options.json()
    credential = authenticator.create(body["publicKey"], origin, rp_id)
    return await post_json(
        client,
        "/settings/passkeys",
        {"handle": body["handle"], "name": name, "credential": credential},
    )


async def passkey_sign_in(
    client: httpx.AsyncClient,
    authenticator: SoftAuthenticator,
    origin: str = ORIGIN,
    rp_id: str = RP_ID,
    next: str = "/",
) -> httpx.Response:
    options = await post_json(client, "/login/passkey/options", {})
    assert options.status_code == 200, options.text
    body = options.json()
    assertion = authenticator.get(body["publicKey"], origin, rp_id)
    return await post_json(
        client, "/login/passkey", {"handle": body["handle"], "credential": assertion, "next": next}
    )
