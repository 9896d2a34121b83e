"""The one approval check, for a case's decisions, a signed proposal and a crisis' common remedy.

Money beyond the automatic limit moves only on a verified signature of someone
whose authority covers it. A name in a message proves nothing: anyone with write
access to the namespace can send any message. A signature over exactly the terms
the workflow itself computes, by the key the live directory holds for that name,
does.

The check comes in two halves around one activity:
1. `admissible`, before anything is asked: the claim is signed, its signature is
   one canonical 64-byte value not used before, and (for decisions) it was made
   within the last minutes. Validators run it too, so junk is refused at the door.
2. `proven`, with the signer's `Authority` from the live directory (an activity's
   answer, so replay sees the same): the key verifies the terms and was not revoked.
   What the signer may grant (their role's level and limits) the caller checks on
   the same `Authority`.

Pure functions: workflows call them deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from activities.io import Authority
from workflows import signatures
from workflows.messages import refusal


@dataclass(frozen=True)
class Claim:
    """A signed statement as presented: who says they signed which terms, and when."""

    signer: str
    terms: bytes  # computed by the workflow from what it holds, never taken from the message
    what: str  # for refusals: "approve P1 800 CNY"
    signed_at: datetime | None
    signature: str | None


def admissible(claim: Claim, now: datetime, used: set[str],
               max_age: timedelta = signatures.SIGNATURE_MAX_AGE) -> str:
    """Checks that need no directory; returns the signature's fingerprint for the replay set.

    A crisis' common remedy passes a longer `max_age`: it reaches cases that join the
    crisis after it was signed (each case still takes it once).
    """
    if not claim.signature or claim.signed_at is None:
        raise refusal("unsigned: a decision must be signed with the signer's key "
                      "(redress approve --key ..., or signed_at and signature in the message)")
    fingerprint = signatures.fingerprint(claim.signature)
    if fingerprint is None:
        raise refusal("malformed signature: send the canonical base64 of the 64-byte Ed25519 signature")
    if fingerprint in used:
        raise refusal("replayed: this signature was already used")
    if claim.signed_at < now - max_age:
        minutes = int(max_age.total_seconds() // 60)
        raise refusal(f"expired: signed at {claim.signed_at.isoformat()}, more than {minutes} minutes ago; "
                      "sign again")
    if claim.signed_at > now + signatures.SIGNATURE_MAX_SKEW:
        raise refusal(f"signed in the future ({claim.signed_at.isoformat()}): check the signer's clock")
    return fingerprint


def proven(claim: Claim, authority: Authority) -> None:
    """The live directory's key for the signer verifies exactly these terms."""
    if authority.unavailable:
        raise refusal(authority.unavailable)
    if authority.person != claim.signer:
        raise refusal(f"the directory was asked about {authority.person}, not {claim.signer}")
    if authority.public_key is None:
        raise refusal(f"{claim.signer} has no public key in the approver directory (none registered, or revoked)")
    assert claim.signature is not None  # admissible() came first
    if not signatures.verify(authority.public_key, claim.terms, claim.signature):
        raise refusal(f"forged or altered: the signature does not verify with {claim.signer}'s key "
                      f"for {claim.what}")


def acting(authority: Authority) -> str:
    """How the timeline names a verified signer's standing: 'team_lead', or 'cs_manager for zhang.wei'."""
    role = authority.role or "no role"
    return f"{role} for {authority.acting_for}" if authority.acting_for else role
