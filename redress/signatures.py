"""Signed approvals: a decision is proven by the approver's Ed25519 key, not claimed by a name.

A Temporal handler cannot see who sent a message, and anyone with write access
to the namespace can send one. So an approval carries a signature over exactly
what it decides (complaint, proposal, decision, amount, currency, approver and
the time of signing); the workflow verifies it against the public key in the
approver directory. Pure functions: the workflow calls them deterministically.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_MAX_AGE = timedelta(minutes=10)
SIGNATURE_MAX_SKEW = timedelta(minutes=2)  # a signer's clock slightly ahead is not an attack
# A crisis' common remedy reaches cases that join the crisis after it was signed; a week bounds how long a
# signature, once seen, can be carried to a case (each case still takes it once).
CRISIS_SIGNATURE_MAX_AGE = timedelta(days=7)
CRISIS = "crisis"  # the `scope` of a crisis' terms: they can never be mistaken for a case's


# A person's name as the approver directory and key files use it (the rules schema's `Identifier`):
# no paths, no line breaks, no capitals.
PERSON_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


def person_name_problem(name: str) -> str | None:
    """Why `name` cannot name a signer (None: it can)."""
    if PERSON_NAME.fullmatch(name) and ".." not in name:
        return None
    return (
        f"{name!r} is not a directory name: use lower-case letters, digits and . _ - "
        "(starting with a letter, at most 64)"
    )


def signed_terms(
    complaint_id: str,
    proposal_id: str,
    decision: str,
    amount: Decimal,
    currency: str,
    approver: str,
    signed_at: datetime,
    kind: str | None = None,
    scope: str | None = None,
) -> bytes:
    """The exact bytes signed: canonical JSON, so every language can produce them.

    `complaint_id` is the case and `approver` the signer. Decisions sign `approve` or
    `reject` on a proposal id; a proposer signs `propose` on the id the proposal will
    get (`P` + the number of remedies the case holds, plus one) and names its `kind`
    too. A crisis' common remedy signs with the crisis key as `complaint_id`, its
    `kind`, and `scope` = `crisis`, so no case's terms are ever a crisis' (a complaint
    id may look like a crisis key).
    """
    terms = {
        "complaint_id": complaint_id,
        "proposal_id": proposal_id,
        "decision": decision,
        "amount": format(Decimal(amount).normalize(), "f"),
        "currency": currency,
        "approver": approver,
        "signed_at": signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if kind is not None:
        terms["kind"] = kind
    if scope is not None:
        terms["scope"] = scope
    return json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()


def sign(private_key: Ed25519PrivateKey, terms: bytes) -> str:
    return base64.b64encode(private_key.sign(terms)).decode()


def canonical_bytes(signature_b64: str) -> bytes | None:
    """The 64 signature bytes, only if the text is their one canonical base64 form.

    base64 has slack (unused padding bits, optional padding): without this check four
    different strings decode to one signature, and a replay check on the text would see
    four signatures where there is one.
    """
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return None
    if len(raw) != 64 or base64.b64encode(raw).decode() != signature_b64:
        return None
    return raw


def fingerprint(signature_b64: str) -> str | None:
    """What a replay check remembers of a signature: the digest of its canonical bytes."""
    raw = canonical_bytes(signature_b64)
    return hashlib.sha256(raw).hexdigest() if raw is not None else None


def verify(public_key_b64: str, terms: bytes, signature_b64: str) -> bool:
    raw = canonical_bytes(signature_b64)
    if raw is None:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(raw, terms)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_key_pair() -> tuple[bytes, str]:
    """A private key as PEM, and the public key as the directory holds it (base64 of the raw 32 bytes)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_key_of(private)


def public_key_of(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def is_public_key(value: str) -> bool:
    """An Ed25519 public key in its one canonical base64 spelling (so a revoked key cannot come back respelt)."""
    try:
        raw = base64.b64decode(value, validate=True)
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return False
    return base64.b64encode(raw).decode() == value
