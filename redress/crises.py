"""A crisis watch's messages and state (the CrisisWatch workflow: workflows/crisis.py).

Part of the contract: the crisis query returns them as JSON, and `redress schema`
publishes them. Apart from the workflow so that activities can start and signal
a watch without importing the engine's workflow code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from redress.contract import (
    Currency,
    Moment,
    Money,
    Name,
    PasskeyAssertion,
    ProposalRecord,
    ProposalStatus,
    RemedyKind,
    Seconds,
    Severity,
    Signature,
    Text,
)

CrisisKey = Annotated[str, Field(min_length=1, max_length=300)]

# Its messages and query, by name (the workflow: workflows/crisis.py; started with CRISIS_WORKFLOW_TYPE).
COMPLAINT_REPORTED = "complaint_reported"  # signal: ComplaintReported, sent by triage
PROPOSE_COMMON_REMEDY = "propose_common_remedy"  # update: RemedyProposal -> the proposal as JSON
APPROVE_COMMON_REMEDY = "approve_common_remedy"  # update: ApprovalDecision -> the proposal as JSON
CRISIS_QUERY = "crisis"  # query: the watch as JSON


class CrisisRules(BaseModel):
    """The rules' crisis settings, as the complaint that reported in saw them."""

    window_seconds: Seconds
    threshold: Annotated[int, Field(ge=1, le=100_000)]
    notify: Name
    raise_to: Severity
    rule_version: Name


class ComplaintReported(BaseModel):
    complaint_id: Name
    at: Moment
    rules: CrisisRules


class CrisisLink(BaseModel):
    """Sent to each linked complaint: raise to this severity (its deadlines follow)."""

    crisis_id: CrisisKey
    raise_to: Severity
    reason: Annotated[str, Field(max_length=2_000)]


class CommonRemedy(BaseModel):
    """Sent to each linked complaint once the common remedy is approved: verify it, carry it out.

    The signature (or passkey assertion) is the approver's over `approve` (or the proposer's over `propose`, when
    their own authority covered it), with the crisis key as the complaint id, the kind, and
    the crisis scope (redress/signatures.py). Without one, the case accepts it only when
    its own rules need no approval for it (a free kind, or within the automatic limit).
    """

    crisis_id: CrisisKey
    proposal_id: Name
    kind: RemedyKind
    amount: Money
    currency: Currency
    reason: Text
    proposed_by: Name
    decision: Literal["approve", "propose"] = "approve"
    signed_by: Name | None = None
    signed_at: Moment | None = None
    signature: Signature | None = None
    passkey: PasskeyAssertion | None = None


class CommonProposal(ProposalRecord):
    """A case's proposal record, plus what one crisis remedy needs to reach every linked case.

    `decided_by` is the verified signer (or the rules); the signature travels on to each
    case, which verifies it itself (`decision`: whose it is, approver's or proposer's).
    """

    status: ProposalStatus = ProposalStatus.awaiting_approval
    decision: Literal["approve", "propose"] = "approve"
    signed_at: Moment | None = None
    signature: str | None = None
    passkey: PasskeyAssertion | None = None
    applied_to: list[str] = Field(default_factory=list)

    def public(self) -> dict:
        return self.model_dump(mode="json", exclude={"signature", "passkey", "signed_at", "decision"})

    def remedy(self, crisis_id: str) -> CommonRemedy:
        return CommonRemedy(
            crisis_id=crisis_id,
            proposal_id=self.proposal_id,
            kind=self.kind,
            amount=self.amount,
            currency=self.currency,
            reason=self.reason,
            proposed_by=self.proposed_by,
            decision=self.decision,
            signed_by=self.decided_by if self.signature or self.passkey else None,
            signed_at=self.signed_at,
            signature=self.signature,
            passkey=self.passkey,
        )


class Sighting(BaseModel):
    complaint_id: Name
    at: Moment


class CrisisState(BaseModel):
    """Every date zone-aware and bounded (contract.Moment): the run does arithmetic on them."""

    key: CrisisKey
    rules: CrisisRules | None = None
    recent: list[Sighting] = Field(default_factory=list)
    declared_at: Moment | None = None
    linked: list[str] = Field(default_factory=list)
    proposals: list[CommonProposal] = Field(default_factory=list)
    team_told: bool = False
    last_seen: Moment | None = None
    used_signatures: list[str] = Field(
        default_factory=list, description="Fingerprints: each counts once, across continue-as-new too."
    )
