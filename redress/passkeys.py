"""Passkeys (WebAuthn): a person signs a decision's terms in the browser; the workflow verifies the assertion.

The CLI signs the canonical terms (redress/signatures.py) with an Ed25519 key file.
The console asks the person's passkey to sign instead: the WebAuthn challenge is
SHA-256 of those same terms, so the authenticator's signature covers exactly this
decision on this amount for this case by this person at this time. The workflow
recomputes the terms from what it holds, and checks, with the `webauthn` library:
the challenge is their hash, the origin is one the directory allows, the
authenticator data is for the directory's relying party id with the user present
and verified, and the signature verifies with the public key the directory holds
for that credential. The console only relays the assertion: it holds no key.

A passkey's signature counter is not checked: a case cannot know the counter's
last value across cases, and synced passkeys report 0. Replays are stopped the
way the CLI's are: the terms name the proposal and the time (fresh for minutes),
and each case remembers the fingerprint of what was signed.

Pure functions; the workflow calls them deterministically.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from webauthn import verify_authentication_response
from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import InvalidAuthenticationResponse

from redress.contract import PasskeyAssertion

USER_VERIFICATION = True  # a decision that moves money needs the person verified (PIN, biometrics), not just present


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    """The bytes of base64url text (padding optional); ValueError if it is not base64url."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


def challenge(terms: bytes) -> bytes:
    """The WebAuthn challenge for these terms: the browser signs this, the workflow recomputes it."""
    return hashlib.sha256(terms).digest()


def fingerprint(assertion: PasskeyAssertion) -> str | None:
    """What a replay check remembers: the digest of what the authenticator signed (None: not decodable).

    The signed bytes, not the signature: an ECDSA signature has a twin (s and n - s) that
    verifies the same message, so a check on the signature alone would let the twin through.
    """
    try:
        signed = from_b64url(assertion.authenticator_data) + from_b64url(assertion.client_data_json)
    except ValueError:
        return None
    return "passkey:" + hashlib.sha256(signed).hexdigest()


def problem(assertion: PasskeyAssertion, terms: bytes, public_key: str, rp_id: str, origins: list[str]) -> str | None:
    """Why this assertion is not a passkey signature over `terms` (None: it is).

    `public_key` is the credential's COSE key as the directory holds it (base64url).
    """
    try:
        verify_authentication_response(
            credential={
                "id": assertion.credential_id,
                "rawId": assertion.credential_id,
                "type": "public-key",
                "response": {
                    "authenticatorData": assertion.authenticator_data,
                    "clientDataJSON": assertion.client_data_json,
                    "signature": assertion.signature,
                    "userHandle": assertion.user_handle,
                },
            },
            expected_challenge=challenge(terms),
            expected_rp_id=rp_id,
            expected_origin=list(origins),
            credential_public_key=from_b64url(public_key),
            credential_current_sign_count=0,
            require_user_verification=USER_VERIFICATION,
        )
    except InvalidAuthenticationResponse as refused:
        return str(refused) or "the assertion does not verify"
    except Exception as error:  # junk of any shape that got past the field checks: a refusal, never a crash
        return f"the assertion cannot be read ({type(error).__name__})"
    return framed(assertion.client_data_json, origins)


def framed(client_data_json: str, origins: list[str]) -> str | None:
    """Why an assertion made inside another site's frame is refused (None: it was not).

    A page of ours framed by another site signs with our origin, but the browser says so:
    `crossOrigin` true, and `topOrigin` the framing site. The console forbids being framed;
    this refuses such an assertion wherever it comes from.
    """
    try:
        data = json.loads(from_b64url(client_data_json))
    except (ValueError, RecursionError):
        return "the client data is not JSON"
    if not isinstance(data, dict):
        return "the client data is not a JSON object"
    if data.get("crossOrigin") not in (None, False):
        return "signed inside a frame of another site (crossOrigin)"
    top = data.get("topOrigin")
    if top is not None and top not in origins:
        return "signed inside a frame of another site (topOrigin)"
    return None


def canonical(text: str) -> bool:
    """Whether this is the one unpadded base64url spelling of its bytes (a revoked key cannot come back respelt)."""
    try:
        return b64url(from_b64url(text)) == text
    except ValueError:
        return False


@functools.lru_cache(maxsize=1024)
def key_identity(public_key: str) -> str | None:
    """The key itself, however its COSE map was written: SHA-256 of its SubjectPublicKeyInfo (None: not a key).

    A COSE key can be encoded in several byte orders; comparing encodings would let a revoked
    passkey back in with its map reordered.
    """
    try:
        key = decoded_public_key_to_cryptography(decode_credential_public_key(from_b64url(public_key)))
        der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except Exception:
        return None
    return hashlib.sha256(der).hexdigest()


def public_key_problem(public_key: str) -> str | None:
    """Why this text is not a credential public key the workflow can verify with (None: it is)."""
    if not canonical(public_key):
        return "not unpadded base64url (copy it from the console's passkey registration)"
    try:
        decoded = decode_credential_public_key(from_b64url(public_key))
    except Exception:
        return "not a COSE public key in base64url (copy it from the console's passkey registration)"
    if decoded.alg not in (COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA):
        return f"COSE algorithm {decoded.alg} is not accepted: ES256 (-7) or EdDSA (-8)"
    return None
