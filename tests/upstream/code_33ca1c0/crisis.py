# Frozen: workflows/crisis.py as of commit 33ca1c0, the code that wrote ../sdk-python-1591-cold-update.json (imports rewritten).
# Not used by Redress: the tripwire in tests/test_upstream.py replays that history on it. Do not edit.
"""One workflow per thing complained about (a SKU, a category or a queue): crisis detection.

Triage signals it (signal-with-start) with each complaint about its key. It
counts them in a sliding window; when the rules' threshold is reached within
the window it declares a crisis: the crisis team is told, and every linked
complaint (those in the window, and any that follow while it lasts) is raised
to the rules' severity and re-timed. A supervisor may then propose one common
remedy; once an eligible approver signs it, each linked case carries it out
through its own payment path, so it is approved once and paid once per case.

History stays bounded: it ends once a quiet window passes with no complaint
(and no remedy pending), and continues as new when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from tests.upstream.code_33ca1c0.io import ProposalCheck, ProposalVerdict, StaffNotice
    from tests.upstream.code_33ca1c0 import signatures
    from tests.upstream.code_33ca1c0.contract import ApprovalDecision, RemedyKind, RemedyProposal, Severity, parse_signal

CRISIS_WORKFLOW_TYPE = "CrisisWatch"
CRISIS_ID_PREFIX = "crisis-"
PATIENT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
REFUSED = "Refused"


def crisis_workflow_id(key: str) -> str:
    return f"{CRISIS_ID_PREFIX}{key}"


class CrisisRules(BaseModel):
    """The rules' crisis settings, as the complaint that reported in saw them."""

    window_seconds: float
    threshold: int
    notify: str
    raise_to: Severity
    rule_version: str


class ComplaintReported(BaseModel):
    complaint_id: str
    at: datetime
    rules: CrisisRules


class CrisisLink(BaseModel):
    """Sent to each linked complaint: raise to this severity (its deadlines follow)."""

    crisis_id: str
    raise_to: Severity
    reason: str


class CommonRemedy(BaseModel):
    """Sent to each linked complaint once the common remedy is approved: carry it out."""

    crisis_id: str
    proposal_id: str
    kind: str
    amount: Decimal
    currency: str
    reason: str
    proposed_by: str
    approved_by: str


class CommonProposal(BaseModel):
    proposal_id: str
    kind: RemedyKind
    amount: Decimal
    currency: str
    reason: str
    proposed_by: str
    status: str = "awaiting_approval"  # then "approved"
    required_role: str | None = None
    eligible: dict[str, str] = Field(default_factory=dict, description="Eligible approvers' public keys.")
    approved_by: str | None = None
    applied_to: list[str] = Field(default_factory=list)

    def public(self) -> dict:
        return self.model_dump(mode="json", exclude={"eligible"})


class Sighting(BaseModel):
    complaint_id: str
    at: datetime


class CrisisState(BaseModel):
    key: str
    rules: CrisisRules | None = None
    recent: list[Sighting] = Field(default_factory=list)
    declared_at: datetime | None = None
    linked: list[str] = Field(default_factory=list)
    proposals: list[CommonProposal] = Field(default_factory=list)
    team_told: bool = False
    last_seen: datetime | None = None


@workflow.defn(name=CRISIS_WORKFLOW_TYPE)
class CrisisWatch:
    @workflow.init
    def __init__(self, state: CrisisState) -> None:
        self._state = state
        self._to_link: list[str] = []
        self._replan = False
        self._checking = False
        self._used_signatures: set[str] = set()

    @workflow.run
    async def run(self, state: CrisisState) -> CrisisState:
        while True:
            self._replan = False
            try:
                await workflow.wait_condition(
                    lambda: self._replan or bool(self._to_link) or self._team_to_tell()
                    or workflow.info().is_continue_as_new_suggested(),
                    timeout=self._quiet_until() - workflow.now() if self._quiet_until() else None,
                    timeout_summary="a quiet window ends the watch",
                )
            except asyncio.TimeoutError:
                pass
            if self._team_to_tell():
                await self._notify_team()
                continue
            if self._to_link:
                await self._link(self._to_link.pop(0))
                continue
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._state)
            quiet = self._quiet_until()
            if quiet and quiet <= workflow.now() and not self._pending() and not self._checking:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._to_link:
                    return self._state

    def _quiet_until(self) -> datetime | None:
        state = self._state
        if state.last_seen is None or state.rules is None:
            return None
        return state.last_seen + timedelta(seconds=state.rules.window_seconds)

    def _pending(self) -> CommonProposal | None:
        return next((p for p in self._state.proposals if p.status == "awaiting_approval"), None)

    def _team_to_tell(self) -> bool:
        return self._state.declared_at is not None and not self._state.team_told

    async def _link(self, complaint_id: str) -> None:
        rules = self._state.rules
        await workflow.get_external_workflow_handle(f"complaint-{complaint_id}").signal(
            "crisis_declared", CrisisLink(crisis_id=self._state.key, raise_to=rules.raise_to,
                                          reason=f"crisis {self._state.key}: {len(self._state.linked)} complaints"))
        for proposal in self._state.proposals:  # a complaint that joins later gets what was approved already
            if proposal.status == "approved" and complaint_id not in proposal.applied_to:
                await self._send_remedy(complaint_id, proposal)

    async def _send_remedy(self, complaint_id: str, proposal: CommonProposal) -> None:
        await workflow.get_external_workflow_handle(f"complaint-{complaint_id}").signal(
            "crisis_remedy", CommonRemedy(
                crisis_id=self._state.key, proposal_id=proposal.proposal_id, kind=proposal.kind.value,
                amount=proposal.amount, currency=proposal.currency, reason=proposal.reason,
                proposed_by=proposal.proposed_by, approved_by=proposal.approved_by or ""))
        proposal.applied_to.append(complaint_id)

    # ------------------------------------------------------------ counting

    @workflow.signal
    def complaint_reported(self, raw: Any) -> None:
        reported, problems = parse_signal(ComplaintReported, raw)
        if reported is None:  # a signal cannot be refused to its sender: log it and carry on
            workflow.logger.warning("complaint_reported signal ignored",
                                    extra={"crisis": self._state.key, "problems": problems})
            return
        state = self._state
        state.rules = reported.rules
        window = timedelta(seconds=reported.rules.window_seconds)
        if reported.complaint_id in state.linked or any(s.complaint_id == reported.complaint_id for s in state.recent):
            return  # a retried triage reports twice
        state.recent = [s for s in state.recent if s.at > reported.at - window]
        state.recent.append(Sighting(complaint_id=reported.complaint_id, at=reported.at))
        state.last_seen = max(state.last_seen or reported.at, reported.at)
        self._replan = True
        if state.declared_at is not None:
            self._add_link(reported.complaint_id)
        elif len(state.recent) >= reported.rules.threshold:
            state.declared_at = workflow.now()
            workflow.logger.info(f"crisis declared: {len(state.recent)} complaints about {state.key}")
            for sighting in state.recent:
                self._add_link(sighting.complaint_id)

    def _add_link(self, complaint_id: str) -> None:
        if complaint_id not in self._state.linked:
            self._state.linked.append(complaint_id)
            self._to_link.append(complaint_id)

    async def _notify_team(self) -> None:
        self._state.team_told = True
        rules = self._state.rules
        notice = StaffNotice(
            complaint_id=self._state.linked[0], key=f"crisis:{self._state.key}:declared", template="crisis_declared",
            role=rules.notify, rule_version=rules.rule_version,
            params={"crisis": self._state.key, "count": str(len(self._state.linked)),
                    "window": str(timedelta(seconds=rules.window_seconds))})
        await workflow.execute_activity("notify_staff", notice, start_to_close_timeout=timedelta(seconds=30),
                                        retry_policy=PATIENT_RETRY)

    # ------------------------------------------------------------ the common remedy

    @workflow.update
    async def propose_common_remedy(self, proposal: RemedyProposal) -> dict:
        """One remedy for every linked case; the rules say who must approve it (per case's amount)."""
        self._checking = True
        try:
            verdict: ProposalVerdict = await workflow.execute_activity(
                "check_proposal", ProposalCheck(
                    complaint_id=self._state.linked[0], rule_version=self._state.rules.rule_version,
                    kind=proposal.kind, amount=proposal.amount, currency=proposal.currency,
                    proposed_by=proposal.proposed_by),
                result_type=ProposalVerdict, start_to_close_timeout=timedelta(seconds=30), retry_policy=PATIENT_RETRY)
        finally:
            self._checking = False
        if not verdict.allowed:
            raise ApplicationError(verdict.reason, type=REFUSED, non_retryable=True)
        record = CommonProposal(
            proposal_id=f"C{len(self._state.proposals) + 1}", kind=proposal.kind, amount=proposal.amount,
            currency=proposal.currency, reason=proposal.reason, proposed_by=proposal.proposed_by,
            required_role=verdict.required_role, eligible=dict(verdict.approver_keys))
        self._state.proposals.append(record)
        if not verdict.needs_approval:
            record.status, record.approved_by = "approved", f"{proposal.proposed_by} (within their authority)"
            await self._apply(record)
        return record.public()

    @propose_common_remedy.validator
    def _check_propose(self, proposal: RemedyProposal) -> None:
        if self._state.declared_at is None:
            raise ApplicationError(f"no crisis is declared for {self._state.key}", type=REFUSED, non_retryable=True)
        if self._pending() or self._checking:
            raise ApplicationError("a common remedy already awaits approval", type=REFUSED, non_retryable=True)

    @workflow.update
    async def approve_common_remedy(self, decision: ApprovalDecision) -> dict:
        record = self._pending()
        record.status, record.approved_by = "approved", decision.approver
        self._used_signatures.add(decision.signature)
        await self._apply(record)
        return record.public()

    @approve_common_remedy.validator
    def _check_approve(self, decision: ApprovalDecision) -> None:
        record = self._pending()
        if record is None:
            raise ApplicationError("no common remedy awaits approval", type=REFUSED, non_retryable=True)
        if decision.proposal_id != record.proposal_id:
            raise ApplicationError(f"unknown or stale proposal {decision.proposal_id}; {record.proposal_id} "
                                   f"awaits a decision", type=REFUSED, non_retryable=True)
        if decision.approver == record.proposed_by:
            raise ApplicationError("an approver may not approve their own proposal", type=REFUSED,
                                   non_retryable=True)
        key = record.eligible.get(decision.approver)
        if key is None:
            raise ApplicationError(f"{decision.approver} may not approve this: it needs {record.required_role} or "
                                   f"above", type=REFUSED, non_retryable=True)
        if not decision.signature or decision.signed_at is None:
            raise ApplicationError("unsigned: a decision must be signed with the approver's key", type=REFUSED,
                                   non_retryable=True)
        age = workflow.now() - decision.signed_at
        if age > signatures.SIGNATURE_MAX_AGE or -age > signatures.SIGNATURE_MAX_SKEW:
            raise ApplicationError("the signature is too old or from the future; sign again", type=REFUSED,
                                   non_retryable=True)
        terms = signatures.signed_terms(self._state.key, record.proposal_id, "approve", record.amount,
                                        record.currency, decision.approver, decision.signed_at)
        if decision.signature in self._used_signatures or not signatures.verify(key, terms, decision.signature):
            raise ApplicationError("the signature does not match this approver and these terms", type=REFUSED,
                                   non_retryable=True)

    async def _apply(self, record: CommonProposal) -> None:
        for complaint_id in list(self._state.linked):
            if complaint_id not in record.applied_to:
                await self._send_remedy(complaint_id, record)

    @workflow.query
    def crisis(self) -> dict:
        state = self._state
        return {
            "key": state.key, "declared_at": state.declared_at.isoformat() if state.declared_at else None,
            "recent": len(state.recent), "linked": list(state.linked),
            "threshold": state.rules.threshold if state.rules else None,
            "proposals": [p.public() for p in state.proposals],
        }
