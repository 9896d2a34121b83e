"""The public contract of the Complaint workflow: its input, messages and query results.

Other services (order system, CRM, web forms, in any language) depend on these
names and shapes, as plain JSON. Rename nothing here without a migration plan;
add optional fields only.

The models validate purely (no clock, no I/O) so the workflow can run the same
validation deterministically on whatever JSON a non-Python client sent.
"""

from __future__ import annotations

import decimal
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

# ---------------------------------------------------------------- workflow types, ids and queues
# The names other services address; the workflows are registered under them (workflows/).

TASK_QUEUE = "redress"
RECORDS_QUEUE_SUFFIX = "-records"

WORKFLOW_TYPE = "Complaint"  # one case per complaint
WORKFLOW_ID_PREFIX = "complaint-"
CUSTOMER_WORKFLOW_TYPE = "CustomerRecord"  # one per customer (by pseudonym): their cases and churn watches
CUSTOMER_ID_PREFIX = "customer-"
CRISIS_WORKFLOW_TYPE = "CrisisWatch"  # one per crisis key (`sku:KETTLE-2`): linked cases, common remedies
CRISIS_ID_PREFIX = "crisis-"
DESK_WORKFLOW_TYPE = "AgentDesk"  # one per queue: who takes the next case
DESK_ID_PREFIX = "desk-"


def records_queue(task_queue: str) -> str:
    """The queue of the long-lived workflows (customer records, crisis watches, desks) beside a case queue.

    They get their own worker and so their own workflow-task slots: a case's triage runs
    as a local activity, which holds the case's slot while it waits on the customer record
    and the desk; on a shared queue a burst of cases could hold every slot and starve them.
    """
    return task_queue if task_queue.endswith(RECORDS_QUEUE_SUFFIX) else task_queue + RECORDS_QUEUE_SUFFIX


def workflow_id_for(complaint_id: str) -> str:
    """One case per complaint id: the id is the workflow id, so Temporal refuses duplicates."""
    return f"{WORKFLOW_ID_PREFIX}{complaint_id}"


def customer_workflow_id(customer_ref: str) -> str:
    """A customer's record, by the pseudonym of their id (never the id itself: it may be an e-mail)."""
    return f"{CUSTOMER_ID_PREFIX}{customer_ref}"


def crisis_workflow_id(key: str) -> str:
    return f"{CRISIS_ID_PREFIX}{key}"


def desk_workflow_id(queue: str) -> str:
    return f"{DESK_ID_PREFIX}{queue}"


# ---------------------------------------------------------------- refusals

REFUSED = "Refused"  # ApplicationError type of every refusal: RedressClient raises it as Refused(reason)


@dataclass(frozen=True)
class Undecodable:
    """A payload the codec would not open; `missing_key` means this worker lacks a key (not the sender's fault)."""

    reason: str
    missing_key: bool = False


def _path_part(part: Any) -> str:
    """`.name` or `.0`; a key that is not a short plain word is described, not quoted (it is the sender's text)."""
    text = str(part)
    if isinstance(part, int) or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,39}", text):
        return f".{text}"
    return f"[a key of {len(text)} characters]"


def _kind_of(value: Any) -> str:
    """What was sent, without what it says: 'a string of 12 characters', 'a number', 'null'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, decimal.Decimal)):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return f"an object of {len(value)} fields"
    return type(value).__name__


def describe(error: ValidationError, root: str) -> list[str]:
    """One line per problem, each naming the field as a dotted path: 'complaint.channel: ...'.

    The offending values are never quoted (a refusal is logged by callers, and the value
    may be a phone number or a customer's words); the kind of value given is.
    """
    lines = []
    for problem in error.errors(include_url=False, include_context=False, include_input=True):
        path = root + "".join(_path_part(part) for part in problem["loc"])
        if problem["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field")
            continue
        message = problem["msg"]
        if problem["type"] != "missing" and "input" in problem:
            message += f" (got {_kind_of(problem['input'])})"
        lines.append(f"{path}: {message}")
    return lines


class Channel(StrEnum):
    phone = "phone"
    email = "email"
    letter = "letter"
    in_person = "in_person"
    web = "web"
    app = "app"
    social = "social"
    third_party = "third_party"
    referral = "referral"


class Severity(StrEnum):
    """Severity tiers, lowest first: 一般 / 紧急 / 重大."""

    general = "general"
    urgent = "urgent"
    major = "major"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANKS[self]


_SEVERITY_RANKS = {severity: rank for rank, severity in enumerate(Severity)}


class RemedyKind(StrEnum):
    apology = "apology"
    explanation = "explanation"
    repair = "repair"
    replacement = "replacement"
    refund = "refund"
    coupon = "coupon"
    points = "points"
    cash = "cash"


# Kinds that are money: they need an amount, and paying one counts toward what the customer was paid.
MONEY_KINDS = (RemedyKind.refund, RemedyKind.coupon, RemedyKind.cash, RemedyKind.points)


class Stage(StrEnum):
    received = "received"
    triaged = "triaged"
    acknowledged = "acknowledged"
    in_progress = "in_progress"
    pending_customer = "pending_customer"  # waiting on the customer: deadline clocks are paused
    remedy_proposed = "remedy_proposed"
    awaiting_approval = "awaiting_approval"
    remedy_executed = "remedy_executed"
    resolved = "resolved"
    follow_up = "follow_up"
    closed = "closed"
    reopened = "reopened"
    withdrawn = "withdrawn"
    refused = "refused"  # the input was invalid: nothing was processed

    @property
    def is_final(self) -> bool:
        return self in (Stage.closed, Stage.withdrawn, Stage.refused)


class _Strict(BaseModel):
    """Unknown fields are refused: a misspelt field would otherwise be silently lost."""

    model_config = ConfigDict(extra="forbid")


Text = Annotated[str, Field(min_length=1, max_length=20_000)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code")]
RootCause = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=64, description="One of the rules' `root_causes`.")
]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)]

# Every number and date a message can carry is bounded, so arithmetic on it (a deadline, a window's end)
# can never overflow: a date in year 9999 plus a deadline is past datetime's range.
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks differ a little between services
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TEN_YEARS = 10 * 366 * 24 * 3600


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError("must fall between the years 2000 and 2099")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_in_range)]
Seconds = Annotated[float, Field(gt=0, le=TEN_YEARS, allow_inf_nan=False, description="A span, in seconds.")]
Count = Annotated[int, Field(ge=0, le=1_000_000)]


Phone = Annotated[str, Field(pattern=r"^\+?[0-9 ()-]{5,32}$")]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


class Customer(_Strict):
    """Contact details are personal data: never logged, only handed to the notifier."""

    id: Name
    name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] = "en"


class ContactCorrection(_Strict):
    """`correct_contact`: new contact details for an open case; the old ones become unreadable (the case goes on
    under a new key and the old key is shredded: redress/codec.py, SubjectKeys)."""

    name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    by: Name = Field(description="Who corrected them (an agent; or `customer` when they asked for it).")

    @model_validator(mode="after")
    def _something(self) -> ContactCorrection:
        if self.name is None and self.phone is None and self.email is None:
            raise ValueError("give at least one of name, phone, email")
        return self

    def fields(self) -> list[str]:
        """What it corrects, by name only (the timeline never holds the values)."""
        return [field for field in ("name", "phone", "email") if getattr(self, field) is not None]


class OrderItem(_Strict):
    sku: Name
    name: Name | None = None
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    unit_price: Money | None = None


class Order(_Strict):
    id: Name
    value: Money = Decimal("0")
    currency: Currency = "CNY"
    items: list[OrderItem] = Field(default_factory=list, max_length=500)
    product_sku: Name | None = None


MetadataValue = (
    Annotated[str, Field(max_length=1_000)]
    | bool
    | Annotated[int, Field(ge=-(10**15), le=10**15)]
    | Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]
    | None
)
METADATA_MAX_BYTES = 16_384


class ComplaintInput(_Strict):
    """What a service submits to open a case (the workflow input, JSON on the wire)."""

    complaint_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]
    customer: Customer
    channel: Channel
    received_at: Moment = Field(description="With a time zone (e.g. 2026-11-22T09:30:00+08:00).")
    text: Text
    order: Order | None = None
    requested_remedy: RemedyKind | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=list, max_length=50)
    metadata: dict[Annotated[str, Field(min_length=1, max_length=64)], MetadataValue] = Field(
        default_factory=dict, max_length=100
    )

    @field_validator("metadata")
    @classmethod
    def _small(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(metadata, ensure_ascii=False).encode()) > METADATA_MAX_BYTES:
            raise ValueError(f"must stay under {METADATA_MAX_BYTES} bytes as JSON")
        return metadata


def describe_validation_error(error: ValidationError, root: str = "complaint") -> list[str]:
    """One line per problem, each naming the field as a dotted path ('complaint.channel: ...'), never its value."""
    return describe(error, root)


# ---------------------------------------------------------------- messages


class ResponseRecord(_Strict):
    """record_response: an agent answered the customer (first response, or a later update)."""

    agent: Name
    message: Text | None = Field(default=None, description="When given, sent to the customer as a progress update.")


Signature = Annotated[str, Field(min_length=1, max_length=200, description="base64 of an Ed25519 signature")]
# base64url without padding, as WebAuthn's JSON writes bytes
B64URL = r"^[A-Za-z0-9_-]*$"


class PasskeyAssertion(_Strict):
    """A passkey's signature over the same terms, sent instead of `signature` (by the console).

    What `navigator.credentials.get()` returned, as base64url; the workflow verifies it
    (redress/passkeys.py). A credential id is at most 1023 bytes.
    """

    credential_id: Annotated[str, Field(min_length=1, max_length=1400, pattern=B64URL)]
    authenticator_data: Annotated[str, Field(min_length=37, max_length=4096, pattern=B64URL)]
    client_data_json: Annotated[str, Field(min_length=1, max_length=4096, pattern=B64URL)]
    signature: Annotated[str, Field(min_length=1, max_length=1400, pattern=B64URL)]
    user_handle: Annotated[str, Field(max_length=200, pattern=B64URL)] | None = None


class RemedyProposal(_Strict):
    """propose_remedy: what an agent offers the customer.

    Above the rules' automatic limit a proposal executes at once only when it is
    signed by its proposer (redress/signatures.py, decision `propose`) and the
    proposer's authority covers it; unsigned, `proposed_by` is only a claim and
    the proposal awaits an approver.
    """

    kind: RemedyKind
    amount: Money = Decimal("0")
    currency: Currency = "CNY"
    reason: Text
    proposed_by: Name
    signed_at: Moment | None = None
    signature: Signature | None = None
    passkey: PasskeyAssertion | None = None


class ApprovalDecision(_Strict):
    """approve_remedy / reject_remedy, signed by the approver's key (see redress/signatures.py) or passkey.

    `signed_at` and one of `signature` (an Ed25519 key file, the CLI) or `passkey`
    (a WebAuthn assertion over the same terms, the console: redress/passkeys.py)
    are required by the workflow's validator; they are optional here only so that
    decisions recorded before signing existed still decode when old cases replay.
    """

    proposal_id: Name
    approver: Name
    note: Annotated[str, Field(max_length=2_000)] | None = None
    signed_at: Moment | None = None
    signature: Signature | None = None
    passkey: PasskeyAssertion | None = None


class Resolution(_Strict):
    """resolve: the agent considers the case handled, and says why it happened.

    `root_cause` is required when the case's rules list root causes (rules/root_causes.yaml), and must be
    one of them: what the practice feeds back into process changes, and what `report` counts by.
    """

    agent: Name
    summary: Text
    root_cause: RootCause | None = None


class Feedback(_Strict):
    """customer_feedback: the follow-up survey answer (CSAT 1-5)."""

    score: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=5_000)] | None = None


class CustomerQuestion(_Strict):
    """await_customer: an agent needs something from the customer; the clocks stop until they answer."""

    agent: Name
    question: Text


class CustomerReply(_Strict):
    """customer_replied: the customer answered; the clocks run again."""

    message: Text


class Retriage(_Strict):
    """retriage: decide a running case again with the current rule version (its deadlines follow)."""

    by: Name
    reason: Text


class SeverityChange(_Strict):
    """change_severity: a supervisor re-tiers the case; its open deadlines are recomputed."""

    severity: Severity
    by: Name
    reason: Text


class Withdrawal(_Strict):
    """withdraw: the customer (or an agent for them) takes the complaint back."""

    by: Name
    reason: Annotated[str, Field(max_length=2_000)] | None = None


class DataExported(_Strict):
    """data_exported (a signal, sent by `redress export-customer`): the customer's data was exported for a
    subject-access request; the case notes who did it, and when."""

    by: Name
    cases: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    keep_seconds: Seconds = Field(
        default=90 * 86400, description="The customer's record keeps this entry at least this long."
    )


# ---------------------------------------------------------------- results


class EvidenceKind(StrEnum):
    photo = "photo"
    document = "document"
    recording = "recording"
    record = "record"  # a system's record: the carrier's scan history, the order log


class Evidence(_Strict):
    """add_evidence: something that backs the complaint, kept elsewhere; the case holds where and its digest.

    Never the bytes: history keeps every message for as long as the case lives, and a
    photo would be megabytes of personal data in it. `sha256` pins exactly which file
    was looked at, so a later dispute compares digests. `ref` and `note` are free text
    (personal data): encrypted like every payload, never logged.
    """

    kind: EvidenceKind
    ref: Annotated[
        str,
        Field(
            min_length=1,
            max_length=2000,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="Where it is kept: a URL or a store's key (no control characters).",
        ),
    ]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$", description="The file's SHA-256, in hex.")]
    note: Annotated[str, Field(max_length=2000)] | None = None
    by: Name = Field(description="Who added it: the agent's name, or `customer`.")

    @field_validator("sha256")
    @classmethod
    def _lower(cls, digest: str) -> str:
        return digest.lower()


class EvidenceEntry(BaseModel):
    """A piece of evidence as `status` lists it: what and whose, not where or the note (the `evidence` query).

    Every update answers the status, and every answer stays in history: the free text of a
    hundred pieces of evidence in each would grow a case's history past Temporal's limit.
    """

    evidence_id: str
    kind: EvidenceKind
    sha256: str
    by: str
    added_at: datetime


class EvidenceRecord(EvidenceEntry):
    """A piece of evidence as the case keeps it (the `evidence` query)."""

    ref: str
    note: str | None = None


class ProposalStatus(StrEnum):
    awaiting_evidence = "awaiting_evidence"  # the rules hold it until evidence of a kind they name is on the case
    lapsed = "lapsed"  # it waited for evidence and the case was resolved or withdrawn without it
    awaiting_approval = "awaiting_approval"
    approved = "approved"
    rejected = "rejected"
    executed = "executed"
    failed = "failed"  # the payment service refused it; a human must act


class ApprovalSeat(BaseModel):
    """One place in an approver group: `count` different people holding `role`.

    A ranked role (in the approval matrix) is filled by its holders and those above; a countersign
    role (finance, say) only by its own holders. One seat of every group `must_cover`: its signer's
    own limits cover the amount, so money never moves on signatures none of which could grant it.
    """

    role: str
    count: int = 1
    countersign: bool = False
    must_cover: bool = False
    eligible: list[str] = Field(default_factory=list, description="Who could fill it when it was asked.")
    approved_by: list[str] = Field(default_factory=list)
    due: datetime | None = Field(default=None, description="When it climbs a level (or, countersign, ends it).")

    def open(self) -> bool:
        return len(self.approved_by) < self.count

    def describe(self) -> str:
        return f"{self.count} x {self.role}" if self.count > 1 else self.role


class GroupApproval(BaseModel):
    """An approver group's rule for one proposal (approval.groups): it is approved when every seat is filled,
    each by a different person, none of them its proposer; one rejection ends it."""

    name: str
    seats: list[ApprovalSeat]
    acting_for: dict[str, str] = Field(
        default_factory=dict, description="A signer standing in for an absent colleague (delegations): whose."
    )

    def signers(self) -> list[str]:
        return [person for seat in self.seats for person in seat.approved_by]

    def authorities(self) -> set[str]:
        """Whose authority the signatures so far used: each signer's own, and the colleagues they stood in for.
        One person's authority fills one seat, whether they sign or their delegate does."""
        return set(self.signers()) | set(self.acting_for.values())

    def complete(self) -> bool:
        return not any(seat.open() for seat in self.seats)

    def waiting_for(self) -> str:
        """The seats still open, for refusals and the timeline: "cs_manager + finance"."""
        return " + ".join(seat.describe() for seat in self.seats if seat.open())

    def describe(self) -> str:
        return " + ".join(seat.describe() for seat in self.seats)


class ProposalRecord(BaseModel):
    proposal_id: str
    kind: RemedyKind
    amount: Decimal
    currency: str
    reason: str
    proposed_by: str
    status: ProposalStatus
    required_role: str | None = None
    eligible_approvers: list[str] = Field(default_factory=list)
    decided_by: str | None = None
    decided_at: datetime | None = None
    transaction_id: str | None = None
    rule_version: str
    proposed_at: datetime | None = None
    proposer_verified: bool = Field(default=False, description="The proposer signed it and the signature verified.")
    within_auto_limit: bool = Field(
        default=False,
        description="Approved by the rules' automatic limit (which counts what the case was granted under it before).",
    )
    evidence_needed: list[EvidenceKind] = Field(
        default_factory=list,
        description="awaiting_evidence: any one of these kinds on the case releases it (rules: evidence_required).",
    )
    held_because: str | None = Field(default=None, description="Why the rules held it for evidence.")
    group: GroupApproval | None = Field(
        default=None, description="awaiting_approval by an approver group: its seats and who has signed."
    )

    def needs(self) -> str:
        """Whose decision it waits for, in words: "team_lead", or "group large-cash: finance (zhang.wei signed)"."""
        if self.group is None:
            return self.required_role or ""
        signed = self.group.signers()
        return f"group {self.group.name}: {self.group.waiting_for()}" + (
            f" ({', '.join(signed)} signed)" if signed else ""
        )


class ProposalAnswer(BaseModel):
    """What propose_remedy returns to the caller."""

    proposal_id: str
    status: ProposalStatus
    required_role: str | None = None


class Deadline(BaseModel):
    due: datetime
    met_at: datetime | None = None
    breached_at: datetime | None = None
    fired: int = Field(default=0, description="Events of its chain done so far (warnings, the breach, levels).")


class RemedyOffer(BaseModel):
    """A remedy the rules suggest for this case; an agent proposes it (or not)."""

    rule: str
    kind: RemedyKind
    amount: Decimal = Decimal("0")
    currency: str | None = None


class Status(BaseModel):
    """The `status` query: where a case stands now."""

    complaint_id: str
    stage: Stage
    severity: Severity | None = None
    category: str | None = None
    queue: str | None = None
    assignee: str | None = None
    deadlines: dict[str, Deadline] = Field(default_factory=dict)
    escalation_level: int = 0
    pending_approval: ProposalRecord | None = None
    approval_due: datetime | None = Field(
        default=None, description="When the pending proposal goes up a level (or to the fallback) undecided."
    )
    remedies: list[ProposalRecord] = Field(default_factory=list)
    offers: list[RemedyOffer] = Field(default_factory=list)
    rule_version: str | None = None
    csat: int | None = None
    reopen_count: int = 0
    paused_since: datetime | None = None
    paused_seconds: float = Field(default=0, description="Time not counted against deadlines so far.")
    tags: list[str] = Field(default_factory=list, description="Set by the rules (e.g. repeat, duplicate_order).")
    root_cause: str | None = Field(default=None, description="Why it happened, as the resolving agent named it.")
    root_causes: list[str] = Field(
        default_factory=list, description="What `resolve` may name as the root cause (the case's rules)."
    )
    apology_by: str | None = Field(
        default=None, description="The role an apology goes out in the name of (the rules' apology_by)."
    )
    evidence: list[EvidenceEntry] = Field(
        default_factory=list, description="What add_evidence put on the case (where, and notes: the evidence query)."
    )
    claimant_flag: str | None = Field(
        default=None,
        description="For staff: the customer is flagged for review (the reason); every remedy needs an approver.",
    )


class TimelineEvent(BaseModel):
    """One line of the audit trail: what happened, when, by whom."""

    at: datetime
    kind: str
    actor: str
    detail: str
    data: dict[str, Any] = Field(default_factory=dict)


class Outcome(BaseModel):
    """The workflow result, kept by Temporal after the case ends (reports read it).

    Anonymous by construction: no names, contacts or free text (remedy reasons are
    blank here and live in the timeline; problems name fields, not values). It is the
    one payload of a case not sealed with the case's own key, so it survives erasure.

    The times and routing fields were added after the first release; results of
    cases that ended before then lack them, and reports fall back to visibility.
    """

    complaint_id: str
    stage: Stage
    severity: Severity | None = None
    category: str | None = None
    channel: Channel | None = None
    queue: str | None = None
    received_at: datetime | None = None
    first_response_at: datetime | None = Field(default=None, description="When an agent first answered.")
    resolved_at: datetime | None = Field(default=None, description="When the case was last resolved.")
    ended_at: datetime | None = None
    csat: int | None = None
    reopen_count: int = 0
    breaches: list[str] = Field(default_factory=list, description="The customer's deadlines missed.")
    team_clocks: list[str] = Field(default_factory=list, description="Queues whose team clock (OLA) ran on the case.")
    team_breaches: list[str] = Field(default_factory=list, description="Queues whose team clock was missed.")
    compensation: list[ProposalRecord] = Field(default_factory=list)
    rule_version: str | None = None
    problems: list[str] = Field(default_factory=list)
    root_cause: str | None = Field(default=None, description="The last resolution's root cause (the rules' list).")
    acknowledged_at: datetime | None = Field(default=None, description="When the acknowledgement went out.")
    first_contact_at: datetime | None = Field(
        default=None,
        description="An agent's first contact with the customer (a response or a question): the first-callback "
        "time is from acknowledged_at (received_at when no acknowledgement went out) to this, at least 0.",
    )
    repeat_complaint: bool | None = Field(
        default=None, description="The customer had complained before within the rules' repeat window."
    )
