# Frozen: workflows/signatures.py as of commit 33ca1c0, the code that wrote ../sdk-python-1591-cold-update.json (imports rewritten).
# Not used by Redress: the tripwire in tests/test_upstream.py replays that history on it. Do not edit.
"""Signed approvals: a decision is proven by the approver's Ed25519 key, not claimed by a name.

A Temporal handler cannot see who sent a message, and anyone with write access
to the namespace can send one. So an approval carries a signature over exactly
what it decides (complaint, proposal, decision, amount, currency, approver and
the time of signing); the workflow verifies it against the public key in the
approver directory. Pure functions: the workflow calls them deterministically.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_MAX_AGE = timedelta(minutes=10)
SIGNATURE_MAX_SKEW = timedelta(minutes=2)  # a signer's clock slightly ahead is not an attack


def signed_terms(complaint_id: str, proposal_id: str, decision: str, amount: Decimal, currency: str,
                 approver: str, signed_at: datetime) -> bytes:
    """The exact bytes signed: canonical JSON, so every language can produce them."""
    terms = {
        "complaint_id": complaint_id,
        "proposal_id": proposal_id,
        "decision": decision,
        "amount": format(Decimal(amount).normalize(), "f"),
        "currency": currency,
        "approver": approver,
        "signed_at": signed_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return json.dumps(terms, sort_keys=True, separators=(",", ":")).encode()


def sign(private_key: Ed25519PrivateKey, terms: bytes) -> str:
    return base64.b64encode(private_key.sign(terms)).decode()


def verify(public_key_b64: str, terms: bytes, signature_b64: str) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
        key.verify(base64.b64decode(signature_b64, validate=True), terms)
    except (InvalidSignature, ValueError):
        return False
    return True


def new_key_pair() -> tuple[bytes, str]:
    """A private key as PEM, and the public key as the directory holds it (base64 of the raw 32 bytes)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
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
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(value, validate=True))
    except ValueError:
        return False
    return True
