# Frozen: activities/io.py as of commit 33ca1c0, the code that wrote ../sdk-python-1591-cold-update.json (imports rewritten).
# Not used by Redress: the tripwire in tests/test_upstream.py replays that history on it. Do not edit.
"""Inputs and outputs of activities: the workflow's private contract with its activities.

Kept apart from workflows/contract.py because no outside service depends on them.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from tests.upstream.code_33ca1c0.contract import Channel, ComplaintInput, Customer, Order, RemedyKind, RemedyOffer, Severity
from tests.upstream.code_33ca1c0.customer import ComplaintEnded


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
    open_on_order: int = 0

    @classmethod
    def of(cls, complaint: ComplaintInput) -> "TriageFacts":
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
    rules: list[RuleFiring] = Field(default_factory=list)
    rules_without_keyword: int = Field(default=0, description="Rules not listed in `rules`: none of their keywords "
                                                                "was in the text (the triage activity lists only rules "
                                                                "it weighed).")
    text_language: str | None = Field(default=None, description="The language the text is written in (zh, en).")
    reply_language: str | None = Field(default=None, description="Answer in this: declared, else the text's.")
    sentiment: dict[str, float] | None = Field(default=None, description="score and anger, when rules read them.")
    assignee: str | None = Field(default=None, description="From the queue's desk, where the rules route it.")
    assignment: str | None = Field(default=None, description="Why: the desk's note for the timeline.")
    survey_window_seconds: float
    reopen_below: int
    chains: dict[str, list[PlannedStep]] = Field(default_factory=dict)

    @property
    def fired(self) -> list[str]:
        return [r.rule for r in self.rules if r.fired]


class DeadlineRequest(BaseModel):
    rule_version: str
    severity: Severity
    start: datetime
    names: list[str]
    paused_seconds: float = 0  # earlier pauses, counted as the tier counts time
    category: str | None = None  # for per-category/queue targets
    queue: str | None = None


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


class ProposalCheck(BaseModel):
    complaint_id: str
    rule_version: str
    kind: RemedyKind
    amount: Decimal
    currency: str
    proposed_by: str
    above_role: str | None = Field(default=None, description="Ask the next level above this role (a timeout).")


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


class CustomerNotice(BaseModel):
    complaint_id: str
    key: str = Field(description="Idempotency key: the same notice is never delivered twice.")
    template: str
    language: str
    customer: Customer
    channel: Channel
    rule_version: str
    params: dict[str, str] = Field(default_factory=dict)


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

    @property
    def idempotency_key(self) -> str:
        return f"remedy:{self.complaint_id}:{self.proposal_id}"


class RemedyReceipt(BaseModel):
    transaction_id: str
    via: str




class CaseEnd(BaseModel):
    """A case ended: its customer's record is told (repeat counts; a churn watch, worked out from the rules)."""

    ended: ComplaintEnded
    metadata: dict[str, Any] = Field(default_factory=dict, description="Where the customer's profile is found.")
