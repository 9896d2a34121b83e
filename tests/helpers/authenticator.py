"""A WebAuthn authenticator in software, for tests that sign without a browser.

It produces what a platform authenticator returns to `navigator.credentials.get()`
(authenticator data, client data JSON, an ES256 signature over both), so engine
tests can send the workflow passkey assertions with any flaw they want to prove
refused. The console's tests use Chromium's own virtual authenticator instead.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from datetime import date

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from redress.contract import PasskeyAssertion
from redress.passkeys import b64url, challenge

ORIGIN = "http://localhost:8090"
RP_ID = "localhost"
UP, UV = 0x01, 0x04


class SoftAuthenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = b64url(secrets.token_bytes(16))
        self.count = 0

    @property
    def public_key(self) -> str:
        """The COSE public key, base64url, as the directory holds it."""
        numbers = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        return b64url(cbor2.dumps(cose))

    def entry(self) -> str:
        """Its line for `passkeys:` in the approver directory (flow style)."""
        return f"{{id: {self.credential_id}, public_key: {self.public_key}, added_on: {date.today().isoformat()}}}"

    def sign(
        self,
        terms: bytes,
        origin: str = ORIGIN,
        rp_id: str = RP_ID,
        flags: int = UP | UV,
        kind: str = "webauthn.get",
        **extra: object,
    ) -> PasskeyAssertion:
        self.count += 1
        authenticator_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", self.count)
        client_data = json.dumps(
            {"type": kind, "challenge": b64url(challenge(terms)), "origin": origin, "crossOrigin": False, **extra}
        ).encode()
        signature = self.key.sign(authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return PasskeyAssertion(
            credential_id=self.credential_id,
            authenticator_data=b64url(authenticator_data),
            client_data_json=b64url(client_data),
            signature=b64url(signature),
        )


def with_passkey(rules, name: str, authenticator: SoftAuthenticator) -> None:
    """Register `authenticator` for `name` in a test rules folder's directory (approval.yaml)."""
    path = rules / "approval.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    prefix = f"  {name}: {{"
    for index, line in enumerate(lines):
        if line.startswith(prefix):
            lines[index] = line[: -len("}")] + f", passkeys: [{authenticator.entry()}]}}"
            break
    else:
        raise AssertionError(f"{name} is not in {path}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
