"""Inputs and outputs of activities: the workflow's private contract with its activities.

Kept apart from redress/contract.py because no outside service depends on them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from redress.contract import (
    ApprovalSeat,
    Channel,
    ComplaintInput,
    Customer,
    EvidenceKind,
    GroupApproval,
    Order,
    RemedyKind,
    RemedyOffer,
    Severity,
)
from redress.customers import ClaimantFlag, ComplaintEnded

TEAM_CLOCK = "ola:"  # a team clock's deadline is named ola:<queue>, beside the customer's deadlines


def is_team_clock(name: str) -> bool:
    """A team's clock (OLA), not one of the customer's deadlines."""
    return name.startswith(TEAM_CLOCK)


class TriageFacts(BaseModel):
    """What the rules may see of a complaint: no name, phone or e-mail."""

    complaint_id: str
    channel: Channel
    received_at: datetime
    text: str
    customer_id: str
    language: str
    language_declared: bool = True  # False: `language` is the default, and the text's own language may say better
    order: Order | None = None
    requested_remedy: RemedyKind | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    complaints_90d: int = Field(default=1, description="Filled in by triage from the customer's record.")
    payouts_90d: int = Field(default=0, description="From the customer's record: payouts within the window.")
    paid_90d: dict[str, Decimal] = Field(default_factory=dict, description="... and how much, per currency.")
    claims_without_evidence: int = Field(default=0, description="... their cases paid with no evidence on them.")
    claimant_flag: ClaimantFlag | None = Field(default=None, description="... flagged for review already.")
    flag_cleared_until: datetime | None = Field(default=None, description="... a supervisor's clearance runs.")
    open_on_order: int = 0

    @classmethod
    def of(cls, complaint: ComplaintInput) -> TriageFacts:
        return cls(
            complaint_id=complaint.complaint_id,
            channel=complaint.channel,
            received_at=complaint.received_at,
            text=complaint.text,
            customer_id=complaint.customer.id,
            language=complaint.customer.language,
            language_declared="language" in complaint.customer.model_fields_set,
            order=complaint.order,
            requested_remedy=complaint.requested_remedy,
            tags=complaint.tags,
            metadata=complaint.metadata,
        )


class PlannedPayout(BaseModel):
    kind: RemedyKind
    amount: Decimal
    currency: str
    reason: str
    needs_approval: bool = False


class PlannedStep(BaseModel):
    """One escalation step of a deadline's chain, as the workflow will carry it out."""

    after_seconds: float
    notify: str | None = None
    raise_severity: Severity | None = None
    reassign: str | None = None
    page: str | None = None
    pay: PlannedPayout | None = None


class RuleFiring(BaseModel):
    rule: str
    fired: bool
    reason: str


class TriageResult(BaseModel):
    rule_version: str
    category: str
    severity: Severity
    queue: str
    tags: list[str] = Field(default_factory=list)
    escalate_to: str
    deadlines: dict[str, datetime]
    offers: list[RemedyOffer] = Field(default_factory=list)
    rules: list[RuleFiring] = Field(
        default_factory=list,
        description="Every rule and offer, fired or not, and why (`redress rules explain`). Cases triaged before "
        "`fired_rules` existed list here the ones that fired.",
    )
    fired_rules: dict[str, list[str]] = Field(
        default_factory=dict,
        description="The triage activity's record: each rule and offer that fired, with the keywords found for it "
        "(none for a rule without keywords or an offer). The sentence saying why is `redress rules explain`'s, "
        "on the case's rule version and complaint.",
    )
    rules_without_keyword: int = Field(
        default=0,
        description="Rules not weighed because none of their keywords was in the text (the triage activity).",
    )
    rules_not_fired: int = Field(
        default=0,
        description="Rules weighed that did not fire (the triage activity; `redress rules explain` on the case's "
        "rule version says why each did not).",
    )
    text_language: str | None = Field(default=None, description="The language the text is written in (zh, en).")
    reply_language: str | None = Field(default=None, description="Answer in this: declared, else the text's.")
    sentiment: dict[str, float] | None = Field(default=None, description="score and anger, when rules read them.")
    assignee: str | None = Field(default=None, description="From the queue's desk, where the rules route it.")
    assignment: str | None = Field(default=None, description="Why: the desk's note for the timeline.")
    survey_window_seconds: float
    reopen_below: int
    chains: dict[str, list[PlannedStep]] = Field(default_factory=dict)
    evidence: dict[str, float] | None = Field(
        default=None, description="category_by: evidence: each category's weight from the fired rules."
    )
    decided_by: str | None = Field(default=None, description="Why the category won (category_by: evidence).")
    customer_ref: str | None = Field(
        default=None,
        description="The customer as visibility and their record know "
        "them: a keyed pseudonym of the id (redress/codec.py).",
    )
    root_causes: list[str] = Field(
        default_factory=list, description="The rules' root causes: what `resolve` must name one of (none: free)."
    )
    apology_by: str | None = Field(
        default=None, description="The role an executed apology is signed by (template apology.<role>): apology_by."
    )
    complaints_90d: int | None = Field(
        default=None, description="The customer's complaints within the repeat window, this one included."
    )
    claimant_flag: ClaimantFlag | None = Field(
        default=None, description="The customer is flagged for review (claimant_flags): every remedy needs approval."
    )
    team_clocks: list[str] = Field(
        default_factory=list, description="The queues the rules give a team clock (ola): a handover to one starts it."
    )
    crisis_key: str | None = Field(
        default=None,
        description="The crisis watch this complaint was reported to "
        "(`sku:KETTLE-2`): the only crisis whose remedy it takes.",
    )

    @property
    def fired(self) -> list[str]:
        """The rules and offers that fired, in the order weighed, whichever way they were recorded."""
        return [r.rule for r in self.rules if r.fired] + list(self.fired_rules)


class DeadlineRequest(BaseModel):
    rule_version: str
    severity: Severity
    start: datetime
    names: list[str]
    paused_seconds: float = 0  # earlier pauses, counted as the tier counts time
    category: str | None = None  # for per-category/queue targets
    queue: str | None = None
    team_clock: bool = Field(default=False, description="Also the team clock (OLA) of `queue`, handed it at start.")


class DeadlineAnswer(BaseModel):
    rule_version: str
    deadlines: dict[str, datetime]
    escalate_to: str
    chains: dict[str, list[PlannedStep]] = Field(default_factory=dict)


class PauseShift(BaseModel):
    """Open deadlines to move later by a pause (paused time is not counted)."""

    rule_version: str
    severity: Severity
    deadlines: dict[str, datetime]
    paused_from: datetime
    paused_to: datetime


class ShiftedDeadlines(BaseModel):
    deadlines: dict[str, datetime]
    paused_seconds: float  # counted as the tier counts: calendar or working time


class ProposalCase(BaseModel):
    """The case an agent proposes a remedy on, as `evidence_required` matches it."""

    category: str
    severity: Severity
    queue: str
    tags: list[str] = Field(default_factory=list)
    flagged: str | None = Field(default=None, description="Why the customer is flagged for review, if they are.")


class ProposalCheck(BaseModel):
    complaint_id: str
    rule_version: str = Field(description="The case's pinned version: roles, limits, timeouts, fallback.")
    kind: RemedyKind
    amount: Decimal
    currency: str
    proposed_by: str
    above_role: str | None = Field(default=None, description="Ask the next level above this role (a timeout).")
    at: datetime | None = Field(default=None, description="The workflow's now: delegations are judged on its day.")
    signed: bool = Field(default=False, description="The proposer signed it: report their authority in `proposer`.")
    auto_used: Decimal = Field(
        default=Decimal(0), description="What the case was already granted under the automatic limit, in this currency."
    )
    case: ProposalCase | None = Field(default=None, description="An agent's proposal: what evidence_required reads.")
    exclude: list[str] = Field(
        default_factory=list, description="above_role for a group's seat: who signed its other seats (not asked again)."
    )
    need: int = Field(default=1, description="above_role: how many people the next level must have to ask.")
    granted_before: Decimal = Field(
        default=Decimal(0), description="What the case was granted of this kind and currency before (groups count it)."
    )


class AuthorityCheck(BaseModel):
    """What a signer may grant on a case: the live directory's view of them, against the case's pinned limits."""

    complaint_id: str
    rule_version: str
    person: str
    kind: RemedyKind
    amount: Decimal
    currency: str
    at: datetime | None = None
    at_least: str | None = Field(default=None, description="The role the decision must come from, or above.")
    seats: list[ApprovalSeat] = Field(default_factory=list, description="A group's seats: which could they fill?")
    granted_before: Decimal = Field(
        default=Decimal(0), description="What the case was granted of this kind and currency before (groups count it)."
    )


class Authority(BaseModel):
    person: str
    directory_version: str = Field(description="The rule version the directory was read from (the newest).")
    public_key: str | None = Field(default=None, description="None: not in the directory, no key, or revoked.")
    passkeys: dict[str, str] = Field(
        default_factory=dict, description="Their passkeys not revoked: credential id -> COSE public key (base64url)."
    )
    relying_party_id: str | None = Field(default=None, description="Where passkeys sign (None: passkeys are off).")
    origins: list[str] = Field(default_factory=list, description="The console origins passkeys may sign on.")
    role: str | None = Field(default=None, description="Effective role today: their own, or one they stand in for.")
    acting_for: str | None = None
    covers: bool = Field(default=False, description="Their authority covers this amount, kind and currency.")
    at_level: bool = Field(default=False, description="Their role is `at_least` or above.")
    fits: list[int] = Field(
        default_factory=list, description="Of the `seats` asked about, those they may fill: the most demanding first."
    )
    group: str | None = Field(
        default=None, description="An approver group's rule covers this remedy: no one signature grants it."
    )
    unavailable: str | None = Field(
        default=None,
        description="Why nobody can be checked now (the rules folder does not load: decisions fail closed).",
    )


class ProposalVerdict(BaseModel):
    allowed: bool
    needs_approval: bool
    required_role: str | None = None
    eligible_approvers: list[str] = Field(default_factory=list)
    approver_keys: dict[str, str] = Field(default_factory=dict, description="Public keys of the eligible approvers.")
    reason: str
    decision_timeout_seconds: float | None = None
    fallback: str = "reject"  # when no level is left: "reject", or "approve" (within fallback_cap)
    fallback_cap: Decimal | None = None
    proposer: Authority | None = Field(default=None, description="The signing proposer's authority (signed only).")
    within_auto_limit: bool = Field(default=False, description="Approved by the rules' automatic limit.")
    evidence_kinds: list[EvidenceKind] = Field(
        default_factory=list, description="evidence_required: the proposal waits until one of these is on the case."
    )
    evidence_reason: str | None = None
    flagged: bool = Field(default=False, description="The customer is flagged: no one approves their own proposal.")
    group: GroupApproval | None = Field(
        default=None, description="An approver group decides: every seat filled by a different person."
    )

    def approvers(self) -> str:
        """Who must decide, in words: "team_lead", or "group large-cash: cs_manager + finance"."""
        return f"group {self.group.name}: {self.group.describe()}" if self.group else self.required_role or "nobody"


class CustomerNotice(BaseModel):
    complaint_id: str
    key: str = Field(description="Idempotency key: the same notice is never delivered twice.")
    template: str
    language: str
    customer: Customer
    channel: Channel
    rule_version: str
    params: dict[str, str] = Field(default_factory=dict)


def utc_minute(moment: datetime) -> str:
    """A time as notices quote it: in UTC, and labelled so (a deadline carries the complaint's own offset)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def notice_params(
    complaint_id: str, severity: Severity | None, queue: str | None, deadlines: dict[str, datetime]
) -> dict[str, str]:
    """What every notice template may quote of a case; shared by the workflow and the intake activity."""
    return {
        "complaint_id": complaint_id,
        "severity": severity.value if severity else "",
        "queue": queue or "",
        **{f"{name}_due": utc_minute(due) for name, due in deadlines.items()},
    }


class Delivery(BaseModel):
    """What became of a customer notice sent within the activity of the step it follows.

    `deferred`: the notifier did not take it (down, slow); the case's own notice queue
    sends it, so a notifier outage neither holds up nor repeats the step.
    """

    outcome: Literal["sent", "refused", "deferred"]
    reason: str = ""


class Intake(BaseModel):
    """Triage and the acknowledgement, run as one step: the acknowledgement quotes what triage decides."""

    facts: TriageFacts
    acknowledgement: CustomerNotice = Field(
        description="Completed by the activity with the triage's language, rules version and deadlines."
    )


class IntakeResult(BaseModel):
    triage: TriageResult
    acknowledgement: Delivery


class KeyChange(BaseModel):
    """A case's key generations (redress/codec.py, SubjectKeys): rekey from `generation`, or shred those below it."""

    workflow_id: str
    generation: int = Field(ge=1)


class StaffNotice(BaseModel):
    complaint_id: str
    key: str
    template: str
    role: str
    person: str | None = Field(default=None, description="Set when a named person is paged.")
    rule_version: str
    params: dict[str, str] = Field(default_factory=dict)


class RemedyOrder(BaseModel):
    complaint_id: str
    proposal_id: str
    kind: RemedyKind
    amount: Decimal
    currency: str
    customer_id: str
    order_id: str | None = None
    then_tell: CustomerNotice | None = Field(default=None, description="Sent once the remedy is carried out.")
    with_evidence: bool = Field(default=False, description="Evidence is on the case (the customer's record counts it).")

    @property
    def idempotency_key(self) -> str:
        return f"remedy:{self.complaint_id}:{self.proposal_id}"


class RemedyReceipt(BaseModel):
    transaction_id: str
    via: str
    told: Delivery | None = None  # what became of the order's then_tell


class CaseEnd(BaseModel):
    """A case ended: its customer's record is told (repeat counts; a churn watch, worked out from the rules)."""

    ended: ComplaintEnded
    metadata: dict[str, Any] = Field(default_factory=dict, description="Where the customer's profile is found.")
    then_tell: CustomerNotice | None = Field(
        default=None, description="The closing notice, sent once the record knows."
    )
