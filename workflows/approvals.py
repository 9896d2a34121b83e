"""The one approval check, for a case's decisions, a signed proposal and a crisis' common remedy.

Money beyond the automatic limit moves only on a verified signature of someone
whose authority covers it. A name in a message proves nothing: anyone with write
access to the namespace can send any message. A signature over exactly the terms
the workflow itself computes, by the key the live directory holds for that name,
does.

Cases (workflows/remedies.py) and crisis watches (workflows/crisis.py) use the
same steps, around one activity that reads the live directory:
1. `claim`: the terms the signer must have signed, computed by the workflow from
   what it holds; `current` for a decision: it is about the proposal that awaits
   one, and the signer is not its proposer (four eyes).
2. `admissible`, before anything is asked: the claim is signed (an Ed25519
   signature from a key file, or a passkey assertion from the console), what was
   signed was not used before, and it was made within the last minutes.
   Validators run it too, so junk is refused at the door.
3. `proven`, with the signer's `Authority` from the live directory (an activity's
   answer, so replay sees the same): the key or passkey verifies the terms (a
   passkey: on an origin and relying party the directory allows, the person
   verified) and was not revoked;
   `entitled`: for a decision, the signer's role is at the level asked and their
   limits cover the amount.

Pure functions: workflows call them deterministically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from activities.io import Authority
from redress import passkeys, signatures
from redress.contract import ApprovalDecision, PasskeyAssertion, ProposalRecord, RemedyKind
from workflows.messages import refusal


@dataclass(frozen=True)
class Claim:
    """A signed statement as presented: who says they signed which terms, and when."""

    signer: str
    terms: bytes  # computed by the workflow from what it holds, never taken from the message
    what: str  # for refusals: "approve P1 800 CNY"
    signed_at: datetime | None
    signature: str | None
    passkey: PasskeyAssertion | None = None


def claim(
    subject: str,
    proposal_id: str,
    decision: str,
    amount: Decimal,
    currency: str,
    signer: str,
    signed_at: datetime | None,
    signature: str | None,
    now: datetime,
    *,
    kind: RemedyKind | None = None,
    crisis: bool = False,
    passkey: PasskeyAssertion | None = None,
) -> Claim:
    """What `signer` says they signed: `decision` (propose, approve, reject) on a proposal, with these terms.

    `subject` is the case's id, or the crisis key for a crisis' common remedy (`crisis`: the terms
    carry the crisis scope, so no case's signature passes for a crisis' and the other way round).
    A proposal's terms name its kind, as do a crisis'; a case's decision names the proposal id.
    `signature` (a key file's) or `passkey` (the console's) proves it: the same terms either way.
    """
    where = f" of crisis {subject}" if crisis else ""
    return Claim(
        signer=signer,
        signed_at=signed_at,
        signature=signature,
        passkey=passkey,
        what=f"{decision} {proposal_id}{where}: {kind.value + ' ' if kind else ''}{amount} {currency}",
        terms=signatures.signed_terms(
            subject,
            proposal_id,
            decision,
            amount,
            currency,
            signer,
            signed_at or now,
            kind=kind.value if kind else None,
            scope=signatures.CRISIS if crisis else None,
        ),
    )


def current(decision: ApprovalDecision, proposal_id: str, proposed_by: str) -> None:
    """A decision is about the proposal that awaits one, by someone other than its proposer."""
    if decision.proposal_id != proposal_id:
        raise refusal(f"unknown or stale proposal {decision.proposal_id}; {proposal_id} awaits a decision")
    if decision.approver == proposed_by:
        raise refusal(f"four eyes: {decision.approver} proposed {proposal_id} and cannot decide it")


def admissible(claim: Claim, now: datetime, used: set[str], max_age: timedelta = signatures.SIGNATURE_MAX_AGE) -> str:
    """Checks that need no directory; returns the signature's fingerprint for the replay set.

    A crisis' common remedy passes a longer `max_age`: it reaches cases that join the
    crisis after it was signed (each case still takes it once).
    """
    if not (claim.signature or claim.passkey) or claim.signed_at is None:
        raise refusal(
            "unsigned: a decision must be signed with the signer's key or passkey "
            "(redress approve --key ..., the console, or signed_at and signature in the message)"
        )
    if claim.signature and claim.passkey:
        raise refusal("send one proof, a signature or a passkey assertion, not both")
    fingerprint = fingerprint_of(claim)
    if fingerprint is None:
        raise refusal(
            "malformed signature: send the canonical base64 of the 64-byte Ed25519 signature"
            if claim.signature
            else "malformed passkey assertion: its authenticator data and client data must be base64url"
        )
    if fingerprint in used:
        raise refusal("replayed: this signature was already used")
    if claim.signed_at < now - max_age:
        minutes = int(max_age.total_seconds() // 60)
        raise refusal(f"expired: signed at {claim.signed_at.isoformat()}, more than {minutes} minutes ago; sign again")
    if claim.signed_at > now + signatures.SIGNATURE_MAX_SKEW:
        raise refusal(f"signed in the future ({claim.signed_at.isoformat()}): check the signer's clock")
    return fingerprint


def fingerprint_of(proof: Claim | ApprovalDecision) -> str | None:
    """What the replay set remembers of a signature or passkey assertion (None: none, or unreadable)."""
    if proof.passkey is not None:
        return passkeys.fingerprint(proof.passkey)
    return signatures.fingerprint(proof.signature) if proof.signature else None


def proven(claim: Claim, authority: Authority) -> None:
    """The live directory's key or passkey for the signer verifies exactly these terms."""
    if authority.unavailable:
        raise refusal(authority.unavailable)
    if authority.person != claim.signer:
        raise refusal(f"the directory was asked about {authority.person}, not {claim.signer}")
    if claim.passkey is not None:
        _passkey_proven(claim, claim.passkey, authority)
        return
    if authority.public_key is None:
        raise refusal(f"{claim.signer} has no public key in the approver directory (none registered, or revoked)")
    assert claim.signature is not None  # admissible() came first
    if not signatures.verify(authority.public_key, claim.terms, claim.signature):
        raise refusal(f"forged or altered: the signature does not verify with {claim.signer}'s key for {claim.what}")


def _passkey_proven(claim: Claim, assertion: PasskeyAssertion, authority: Authority) -> None:
    public_key = authority.passkeys.get(assertion.credential_id)
    if public_key is None:
        raise refusal(
            f"{claim.signer} has no such passkey in the approver directory (never registered for them, or revoked)"
        )
    if authority.relying_party_id is None:
        raise refusal("passkeys are off: the approver directory names no relying_party")
    problem = passkeys.problem(assertion, claim.terms, public_key, authority.relying_party_id, authority.origins)
    if problem:
        raise refusal(f"forged or altered: {claim.signer}'s passkey did not sign {claim.what} ({problem})")


def not_standing_in_for(authority: Authority, pending: ProposalRecord) -> None:
    """Four eyes hold on authority, not only on names: a delegate standing in for the proposer (delegations)
    decides with the proposer's own authority, so may not decide their proposal."""
    if authority.acting_for is not None and authority.acting_for == pending.proposed_by:
        raise refusal(
            f"four eyes: {authority.person} stands in for {pending.proposed_by}, who proposed "
            f"{pending.proposal_id}, and cannot decide it"
        )


def entitled(
    authority: Authority, proposal_id: str, required_role: str | None, amount: Decimal, currency: str, verb: str
) -> None:
    """A decision's signer is at the level the proposal asks for, and their limits cover its amount."""
    if not (authority.at_level and authority.covers):
        raise refusal(
            f"{authority.person} may not {verb} {proposal_id}: it needs {required_role} or above, "
            f"with authority over {amount} {currency}"
        )


def acting(authority: Authority) -> str:
    """How the timeline names a verified signer's standing: 'team_lead', or 'cs_manager for zhang.wei'."""
    role = authority.role or "no role"
    return f"{role} for {authority.acting_for}" if authority.acting_for else role
