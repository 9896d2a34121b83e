"""All one case knows, in one place: the Complaint workflow and its parts read and change it.

The parts (workflows/deadlines.py, notices.py, remedies.py) each take the case's
`CaseState`; there is one workflow thread, so they never change it at the same
time. The two answers the case gives out, `status` (a query) and `outcome` (its
result), are views of it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field, TypeAdapter
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.io import TEAM_CLOCK, PlannedStep, TriageResult, is_team_clock
    from redress.contract import (
        ComplaintInput,
        Deadline,
        Evidence,
        EvidenceEntry,
        EvidenceKind,
        EvidenceRecord,
        Feedback,
        Outcome,
        ProposalRecord,
        ProposalStatus,
        RemedyKind,
        Resolution,
        Severity,
        Stage,
        Status,
        TimelineEvent,
        Withdrawal,
    )
    from workflows.messages import refusal


@dataclass
class CaseState:
    id: str
    complaint: ComplaintInput | None
    problems: list[str]  # why the complaint was refused as invalid (then `complaint` is None)
    raw_customer_id: str | None = None  # a refused complaint's customer id, if it had a readable one
    customer_ref: str | None = None  # a refused case's customer, as visibility may show them
    stage: Stage = Stage.received
    timeline: list[TimelineEvent] = field(default_factory=list)

    # what triage (and any retriage or change of severity) decided
    triage: TriageResult | None = None
    rule_version: str | None = None
    severity: Severity | None = None
    category: str | None = None
    queue: str | None = None
    escalate_to: str | None = None
    assignee: str | None = None

    # deadlines (workflows/deadlines.py plans their events)
    deadlines: dict[str, Deadline] = field(default_factory=dict)
    deadline_starts: dict[str, datetime] = field(default_factory=dict)
    chains: dict[str, list[PlannedStep]] = field(default_factory=dict)
    paused_since: datetime | None = None  # waiting on the customer: no clock runs
    stage_before_pause: Stage | None = None
    paused_seconds: float = 0.0
    escalation_level: int = 0
    breaches: list[str] = field(default_factory=list)  # the customer's deadlines missed
    team_breaches: list[str] = field(default_factory=list)  # team clocks (ola:<queue>) missed
    approval_due: datetime | None = None  # when the level asked must have decided
    survey_until: datetime | None = None
    survey_expired: bool = False

    # remedies (workflows/remedies.py)
    proposals: list[ProposalRecord] = field(default_factory=list)
    proposal_asked: bool = False  # a proposal waits for its step: a second one is refused meanwhile
    used_signatures: set[str] = field(default_factory=set)  # fingerprints (redress/signatures.py): each counts once
    crises: list[str] = field(default_factory=list)  # crisis watches this case is linked to
    crisis_keys: set[str] = field(default_factory=set)  # the crises triage reported it to: the only ones it takes
    crisis_remedies: set[str] = field(default_factory=set)  # "<crisis>:<proposal>" already taken on
    to_execute: deque[str] = field(default_factory=deque)
    executing: str | None = None
    evidence: list[EvidenceRecord] = field(default_factory=list)  # references and digests, never the bytes

    # the agent's and the customer's part
    resolution: Resolution | None = None
    feedback: Feedback | None = None
    withdrawal: Withdrawal | None = None
    csat: int | None = None
    reopen_count: int = 0
    root_cause: str | None = None  # the last resolution's (a reopened case keeps it until resolved again)
    acknowledged_at: datetime | None = None
    first_contact_at: datetime | None = None  # an agent's first response or question to the customer

    attributes_changed: bool = False  # the search attributes are out of date (complaint.py publishes them)
    key_generation: int = 1  # of the case's payload key: a contact correction moves it on (redress/codec.py)

    # ------------------------------------------------------------ changes

    def event(self, kind: str, actor: str, detail: str, **data: Any) -> None:
        """Add to the timeline. The log line names the kind only: details quote the customer's and agents' words."""
        self.timeline.append(TimelineEvent(at=workflow.now(), kind=kind, actor=actor, detail=detail, data=data))
        workflow.logger.info(kind, extra={"complaint_id": self.id, "stage": self.stage.value})

    def set_stage(self, stage: Stage) -> None:
        if stage != self.stage:
            self.stage = stage
            self.publish()

    def publish(self) -> None:
        """Mark the search attributes as changed; they are sent once the workflow task settles."""
        self.attributes_changed = True

    def count(self, metric: str, **attributes: str) -> None:
        """Our own Prometheus counters, through the workflow's meter (not emitted again on replay)."""
        workflow.metric_meter().create_counter(metric, f"Redress: {metric.replace('_', ' ')}").add(1, attributes)

    def refuse_unless_open(self) -> None:
        if self.stage.is_final:
            raise refusal(f"the case is {self.stage.value}")

    def team_answered(self) -> None:
        """An agent answered, asked or resolved: the team clock running (the queue the case was handed to) is met."""
        for name in self.deadlines:
            if is_team_clock(name):
                self.meet(name)

    def meet(self, name: str) -> None:
        """A deadline's target was met: its chain stops."""
        deadline = self.deadlines.get(name)
        if deadline and deadline.met_at is None:
            deadline.met_at = workflow.now()
            self.publish()

    # ------------------------------------------------------------ reading

    @property
    def received(self) -> ComplaintInput:
        """The complaint; only a case that accepted its input has a lifecycle (every caller is past that)."""
        assert self.complaint is not None
        return self.complaint

    @property
    def tier(self) -> Severity:
        """The severity; set by triage, before any message is taken."""
        assert self.severity is not None
        return self.severity

    def pending_approval(self) -> ProposalRecord | None:
        return next((p for p in self.proposals if p.status == ProposalStatus.awaiting_approval), None)

    def held_proposal(self) -> ProposalRecord | None:
        """The proposal the rules hold until evidence is on the case (evidence_required), if one is."""
        return next((p for p in self.proposals if p.status == ProposalStatus.awaiting_evidence), None)

    def evidence_of(self, kinds: list[EvidenceKind]) -> EvidenceRecord | None:
        """The first evidence on the case of one of these kinds."""
        return next((e for e in self.evidence if e.kind in kinds), None)

    def add_evidence(self, evidence: Evidence) -> EvidenceRecord:
        record = EvidenceRecord(
            evidence_id=f"E{len(self.evidence) + 1}", added_at=workflow.now(), **evidence.model_dump()
        )
        self.evidence.append(record)
        note = f": {evidence.note}" if evidence.note else ""
        self.event(
            "evidence_added",
            "customer" if evidence.by == "customer" else f"agent:{evidence.by}",
            f"{record.evidence_id}: {evidence.kind.value} at {evidence.ref} (sha256 {evidence.sha256}){note}",
            evidence_id=record.evidence_id,
            evidence_kind=evidence.kind.value,
            sha256=evidence.sha256,
        )
        return record

    def proposal(self, proposal_id: str) -> ProposalRecord:
        return next(p for p in self.proposals if p.proposal_id == proposal_id)

    def next_proposal_id(self) -> str:
        return f"P{len(self.proposals) + 1}"

    def granted(self, kind: RemedyKind, currency: str) -> Decimal:
        """What this case was granted of a kind so far, in a currency, however approved (an approver group's
        threshold counts it: splitting a payout does not avoid the group)."""
        given = (ProposalStatus.approved, ProposalStatus.executed)
        return sum(
            (p.amount for p in self.proposals if p.kind == kind and p.currency == currency and p.status in given),
            Decimal(0),
        )

    def auto_used(self, currency: str) -> Decimal:
        """What this case was granted under the rules' automatic limit so far, in a currency (not what failed)."""
        return sum(
            (
                p.amount
                for p in self.proposals
                if p.within_auto_limit
                and p.currency == currency
                and p.status not in (ProposalStatus.failed, ProposalStatus.lapsed)
            ),
            Decimal(0),
        )

    def tags(self) -> list[str]:
        """What the rules tagged the case with at triage (repeat, duplicate_order, damaged...)."""
        return self.triage.tags if self.triage else []

    def claimant_flag(self) -> str | None:
        """Why the customer is flagged for review (claimant_flags), as triage found them; None if they are not."""
        flag = self.triage.claimant_flag if self.triage else None
        return flag.reason if flag else None

    def root_causes(self) -> list[str]:
        """What `resolve` may name: the case's rules' list (empty for cases triaged before there was one)."""
        return self.triage.root_causes if self.triage else []

    def contacted_by_agent(self) -> None:
        """An agent answered or asked the customer something: the first such time is the first callback (reports
        measure it from the acknowledgement: an answer before the acknowledgement went out counts as at once)."""
        if self.first_contact_at is None:
            self.first_contact_at = workflow.now()

    def reply_language(self) -> str:
        """The customer's declared language; without one, the language they wrote in (activity input only)."""
        if self.triage and self.triage.reply_language:
            return self.triage.reply_language
        return self.received.customer.language

    def status(self) -> Status:
        return Status(
            complaint_id=self.id,
            stage=self.stage,
            severity=self.severity,
            category=self.category,
            queue=self.queue,
            assignee=self.assignee,
            deadlines=self.deadlines,
            escalation_level=self.escalation_level,
            pending_approval=self.pending_approval(),
            approval_due=self.approval_due if self.pending_approval() else None,
            remedies=self.proposals,
            offers=self.triage.offers if self.triage else [],
            rule_version=self.rule_version,
            csat=self.csat,
            reopen_count=self.reopen_count,
            paused_since=self.paused_since,
            paused_seconds=self.paused_seconds,
            tags=self.tags(),
            root_cause=self.root_cause,
            root_causes=self.root_causes(),
            apology_by=self.triage.apology_by if self.triage else None,
            evidence=[EvidenceEntry.model_validate(e, from_attributes=True) for e in self.evidence],
            claimant_flag=self.claimant_flag(),
        )

    def outcome(self) -> Outcome:
        def met(name: str) -> datetime | None:
            deadline = self.deadlines.get(name)
            return deadline.met_at if deadline else None

        return Outcome(
            complaint_id=self.id,
            stage=self.stage,
            severity=self.severity,
            category=self.category,
            channel=self.complaint.channel if self.complaint else None,
            queue=self.queue,
            received_at=self.complaint.received_at if self.complaint else None,
            first_response_at=met("first_response"),
            resolved_at=met("resolution"),
            ended_at=workflow.now(),
            csat=self.csat,
            reopen_count=self.reopen_count,
            breaches=self.breaches,
            team_clocks=sorted(name.removeprefix(TEAM_CLOCK) for name in self.deadlines if is_team_clock(name)),
            team_breaches=[name.removeprefix(TEAM_CLOCK) for name in self.team_breaches],
            # the Outcome outlives erasure (redress/codec.py): amounts and kinds, not the agents' free text
            compensation=[
                p.model_copy(update={"reason": ""}) for p in self.proposals if p.status == ProposalStatus.executed
            ],
            rule_version=self.rule_version,
            problems=self.problems,
            root_cause=self.root_cause,
            acknowledged_at=self.acknowledged_at,
            first_contact_at=self.first_contact_at,
            repeat_complaint=(
                self.triage.complaints_90d > 1 if self.triage and self.triage.complaints_90d is not None else None
            ),
        )


HANDOVER = "contact-correction"


class CaseHandover(BaseModel):
    """What a case hands to its next run when its contact details were corrected (continue-as-new): all it knows,
    under the new key. Taken only by a run that continues this case (workflows/complaint.py checks)."""

    handover: Literal["contact-correction"] = "contact-correction"
    case: dict[str, Any]
    notices_sequence: int = Field(ge=0)

    @classmethod
    def of(cls, case: CaseState, notices_sequence: int) -> CaseHandover:
        return cls(case=_CASE.dump_python(case, mode="json"), notices_sequence=notices_sequence)

    def state(self) -> CaseState:
        return _CASE.validate_python(self.case)


_CASE: TypeAdapter[CaseState] = TypeAdapter(CaseState)
