# Frozen: workflows/complaint.py as of commit 33ca1c0, the code that wrote ../sdk-python-1591-cold-update.json (imports rewritten).
# Not used by Redress: the tripwire in tests/test_upstream.py replays that history on it. Do not edit.
"""The Complaint workflow: one durable case from intake to close.

Shape of the code:
- the main coroutine walks the lifecycle (triage, acknowledge, work the case,
  follow up, close or reopen) and waits on state that message handlers change;
- a deadline watcher sleeps until the earliest unmet deadline and escalates on a
  miss; any change to deadlines bumps `_deadline_epoch`, which wakes it to re-plan,
  so a stale timer never fires;
- a notice sender delivers customer and staff messages in order, each with an
  idempotency key derived from the case and a sequence number.

Handlers only validate and record; anything slow (activities) happens in the
main flow, except the rules check of a proposal, whose answer the caller waits for.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from tests.upstream.code_33ca1c0.activity_names import ComplaintActivities
    from tests.upstream.code_33ca1c0.io import (
        CaseEnd,
        CustomerNotice,
        PauseShift,
        PlannedPayout,
        DeadlineRequest,
        PlannedStep,
        ProposalCheck,
        ProposalVerdict,
        RemedyOrder,
        StaffNotice,
        TriageFacts,
        TriageResult,
    )
    from tests.upstream.code_33ca1c0 import search_attributes as sa
    from tests.upstream.code_33ca1c0 import signatures
    from tests.upstream.code_33ca1c0.crisis import CommonRemedy, CrisisLink
    from tests.upstream.code_33ca1c0.customer import ComplaintEnded
    from tests.upstream.code_33ca1c0.contract import (
        WORKFLOW_ID_PREFIX,
        WORKFLOW_TYPE,
        ApprovalDecision,
        ComplaintInput,
        CustomerQuestion,
        CustomerReply,
        Deadline,
        Feedback,
        Outcome,
        ProposalAnswer,
        ProposalRecord,
        ProposalStatus,
        RemedyProposal,
        Resolution,
        ResponseRecord,
        Severity,
        Retriage,
        SeverityChange,
        Stage,
        Status,
        TimelineEvent,
        M,
        Withdrawal,
        describe_validation_error,
        parse_signal,
    )

REFUSED = "Refused"  # ApplicationError type of every refused message: the caller's `Refused(reason)`

# Peers may be down for a while: keep trying (with backoff) rather than fail the case.
PATIENT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                            maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
ESCALATION_CHAINS = "escalation-chains"  # workflow.patched id: cases before it escalate once per miss
CUSTOMER_RECORD = "customer-record"  # workflow.patched id: cases before it do not tell the customer's record
STAGES_BEFORE_RESPONSE = (Stage.triaged, Stage.acknowledged, Stage.reopened)


async def _activity(method: Any, argument: Any) -> Any:
    """Every activity of a case runs with the same patience: retried with backoff, never giving up."""
    return await workflow.execute_activity_method(
        method, argument, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=PATIENT_RETRY)


def _reason(failure: ActivityError) -> str:
    cause = failure.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


def _refuse(reason: str) -> ApplicationError:
    return ApplicationError(reason, type=REFUSED, non_retryable=True)


@workflow.defn(name=WORKFLOW_TYPE)
class Complaint:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._problems: list[str] = []
        self._anonymous_problems: list[str] = []  # for the Outcome, which must not quote the input
        self._complaint: ComplaintInput | None = None
        try:
            self._complaint = ComplaintInput.model_validate(raw)
        except ValidationError as invalid:
            self._problems = describe_validation_error(invalid)
            self._anonymous_problems = describe_validation_error(invalid, quote_input=False)
        self._id = workflow.info().workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
        self._stage = Stage.received
        self._timeline: list[TimelineEvent] = []
        self._triage: TriageResult | None = None
        self._rule_version: str | None = None
        self._severity: Severity | None = None
        self._category: str | None = None
        self._queue: str | None = None
        self._escalate_to: str | None = None
        self._assignee: str | None = None
        self._deadlines: dict[str, Deadline] = {}
        self._deadline_epoch = 0
        self._deadline_starts: dict[str, datetime] = {}
        self._chains: dict[str, list[PlannedStep]] = {}
        self._recomputing = False
        self._paused_since: datetime | None = None
        self._stage_before_pause: Stage | None = None
        self._paused_seconds = 0.0
        self._resuming = False
        self._escalation_level = 0
        self._breaches: list[str] = []
        self._proposals: list[ProposalRecord] = []
        self._checking_proposal = False
        self._approver_keys: dict[str, dict[str, str]] = {}  # proposal id -> eligible approvers' public keys
        self._used_signatures: set[str] = set()
        self._crises: list[str] = []  # crisis watches this case is linked to
        self._crisis_remedies: set[str] = set()  # "<crisis>:<proposal>" already taken on
        self._approval_due: datetime | None = None  # when the level asked must have decided
        self._to_execute: deque[str] = deque()
        self._executing: str | None = None
        self._resolution: Resolution | None = None
        self._feedback: Feedback | None = None
        self._withdrawal: Withdrawal | None = None
        self._csat: int | None = None
        self._reopen_count = 0
        self._notices: deque[CustomerNotice | StaffNotice] = deque()
        self._notice_seq = 0
        self._stop_sending = False
        self._search_attributes: dict[str, Any] = {}

    # ------------------------------------------------------------ lifecycle

    @workflow.run
    async def run(self, raw: Any) -> Outcome:
        if self._complaint is None:
            self._stage = Stage.refused
            self._event("refused", "system", "invalid complaint: " + "; ".join(self._problems),
                        problems=self._problems)
            self._publish()
            return self._outcome()

        complaint = self._complaint
        self._event("received", f"channel:{complaint.channel.value}", f"received via {complaint.channel.value}",
                    received_at=complaint.received_at.isoformat())
        self._publish()
        triage = await _activity(ComplaintActivities.triage, TriageFacts.of(complaint))
        self._apply_triage(triage)
        self._count("redress_complaints_started", severity=triage.severity.value, channel=complaint.channel.value)

        watcher = asyncio.create_task(self._watch_deadlines())
        sender = asyncio.create_task(self._send_notices())
        self._tell_customer("acknowledgement")
        await workflow.wait_condition(lambda: not self._notices)
        if not any(e.kind == "notice_failed" for e in self._timeline):
            if self._stage == Stage.triaged:
                self._set_stage(Stage.acknowledged)
            self._event("acknowledged", "system", "acknowledgement sent to the customer")
            await self._contacted()

        while True:
            await self._work_case()
            if self._withdrawal:
                break
            await self._follow_up()
            if self._stage != Stage.reopened:
                break

        if self._withdrawal:
            self._set_stage(Stage.withdrawn)
            self._tell_customer("withdrawn")
        else:
            self._set_stage(Stage.closed)
            self._event("closed", "system", "case closed", csat=self._csat)
            self._tell_customer("closed")
        self._deadline_epoch += 1
        self._stop_sending = True
        await sender
        await watcher
        if workflow.patched(CUSTOMER_RECORD):
            await _activity(ComplaintActivities.record_case_end, CaseEnd(ended=ComplaintEnded(
                complaint_id=self._id, stage=self._stage.value, ended_at=workflow.now(),
                rule_version=self._rule_version, customer=complaint.customer, channel=complaint.channel,
                language=self._reply_language()), metadata=complaint.metadata))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome()

    def _apply_triage(self, triage: TriageResult) -> None:
        self._triage = triage
        self._rule_version = triage.rule_version
        self._severity = triage.severity
        self._category = triage.category
        self._queue = triage.queue
        self._escalate_to = triage.escalate_to
        self._deadlines = {name: Deadline(due=due) for name, due in triage.deadlines.items()}
        self._deadline_starts = {name: self._complaint.received_at for name in triage.deadlines}
        self._chains = dict(triage.chains)
        self._deadline_epoch += 1
        self._stage = Stage.triaged
        self._event(
            "triaged", "rules",
            f"{triage.category} / {triage.severity.value} / queue {triage.queue} (rules {triage.rule_version})",
            rule_version=triage.rule_version, fired=triage.fired, language=triage.text_language,
            sentiment=triage.sentiment,
            deadlines={k: v.isoformat() for k, v in triage.deadlines.items()},
        )
        if triage.assignee:
            self._assignee = triage.assignee
            self._event("assigned", "desk", triage.assignment or f"assigned to {triage.assignee}",
                        agent=triage.assignee)
        self._publish()

    async def _work_case(self) -> None:
        """Until the agent resolves the case (or it is withdrawn), carry out remedies as they are cleared."""
        while True:
            await workflow.wait_condition(lambda: bool(self._to_execute or self._resolution or self._withdrawal))
            if self._withdrawal:
                return
            if self._to_execute:
                await self._execute(self._to_execute.popleft())
                continue
            return  # resolved

    async def _execute(self, proposal_id: str) -> None:
        proposal = self._proposal(proposal_id)
        self._executing = proposal_id
        order = RemedyOrder(
            complaint_id=self._id, proposal_id=proposal_id, kind=proposal.kind, amount=proposal.amount,
            currency=proposal.currency, customer_id=self._complaint.customer.id,
            order_id=self._complaint.order.id if self._complaint.order else None,
        )
        try:
            receipt = await _activity(ComplaintActivities.execute_remedy, order)
        except ActivityError as failure:
            reason = _reason(failure)
            proposal.status = ProposalStatus.failed
            self._executing = None
            self._set_stage(Stage.awaiting_approval if self._pending_approval() else Stage.in_progress)
            self._event("remedy_failed", "payment", f"{proposal_id} was refused: {reason}; back to a person",
                        proposal_id=proposal_id)
            self._tell_staff("remedy_failed", self._escalate_to, proposal=proposal, reason=reason)
            return
        proposal.status = ProposalStatus.executed
        proposal.transaction_id = receipt.transaction_id
        self._count("redress_payouts", kind=proposal.kind.value, currency=proposal.currency)
        self._executing = None
        self._set_stage(Stage.awaiting_approval if self._pending_approval() else Stage.remedy_executed)
        self._event("remedy_executed", "payment",
                    f"{proposal_id}: {proposal.kind.value} {proposal.amount} {proposal.currency} ({receipt.via})",
                    proposal_id=proposal_id, transaction_id=receipt.transaction_id)
        self._tell_customer("remedy_executed", proposal=proposal)
        await self._contacted()

    async def _follow_up(self) -> None:
        assert self._resolution is not None and self._triage is not None
        self._set_stage(Stage.resolved)
        self._tell_customer("survey", summary=self._resolution.summary)
        self._set_stage(Stage.follow_up)
        try:
            await workflow.wait_condition(
                lambda: bool(self._feedback or self._withdrawal),
                timeout=timedelta(seconds=self._triage.survey_window_seconds),
                timeout_summary="survey window",
            )
        except asyncio.TimeoutError:
            self._event("survey_expired", "system", "no survey answer within the window")
            return
        if self._withdrawal or self._feedback is None:
            return
        feedback, self._feedback = self._feedback, None
        self._csat = feedback.score
        if feedback.score >= self._triage.reopen_below:
            return
        await self._reopen(feedback)

    async def _reopen(self, feedback: Feedback) -> None:
        self._reopen_count += 1
        self._resolution = None
        answer = await _activity(ComplaintActivities.compute_deadlines, DeadlineRequest(
            rule_version=self._rule_version, severity=self._severity, start=workflow.now(),
            names=["resolution", "next_update"] if "next_update" in self._deadlines else ["resolution"],
            category=self._category, queue=self._queue))
        self._deadlines.update({name: Deadline(due=due) for name, due in answer.deadlines.items()})
        self._deadline_starts.update({name: workflow.now() for name in answer.deadlines})
        self._chains.update(answer.chains)
        self._deadline_epoch += 1
        self._set_stage(Stage.reopened)
        self._event("reopened", "customer", f"CSAT {feedback.score} is below {self._triage.reopen_below}",
                    score=feedback.score, resolution_due=answer.deadlines["resolution"].isoformat())
        self._tell_customer("reopened")

    # ------------------------------------------------------------ deadlines

    async def _watch_deadlines(self) -> None:
        """Sleep until the next event of any open deadline's chain; re-plan whenever deadlines change."""
        while not self._stage.is_final:
            epoch = self._deadline_epoch
            changed = lambda epoch=epoch: self._deadline_epoch != epoch or self._stage.is_final  # noqa: E731
            upcoming = self._next_event()
            if upcoming is None:
                await workflow.wait_condition(changed)
                continue
            at, name, kind, step = upcoming
            wait = (at - workflow.now()).total_seconds()
            if wait > 0:
                summary = f"{name} deadline" if kind == "breach" else f"{name} {kind}"
                try:
                    await workflow.wait_condition(changed, timeout=timedelta(seconds=wait), timeout_summary=summary)
                    continue
                except asyncio.TimeoutError:
                    pass
            if self._stage.is_final:
                break
            if name == "approval":
                await self._approval_timed_out()
                continue
            if not workflow.patched(ESCALATION_CHAINS):
                self._breach(name)  # cases started before escalation chains: one notice per missed deadline
                self._deadlines[name].fired = len(self._events(name))
                continue
            await self._fire(name, kind, step)

    def _events(self, name: str) -> list[tuple[datetime, str, PlannedStep | None]]:
        """A deadline's chain in firing order: warnings, the breach itself, then the levels."""
        deadline = self._deadlines[name]
        steps = self._chains.get(name) or [PlannedStep(after_seconds=0, notify=self._escalate_to)]
        def at(step: PlannedStep) -> datetime:
            return deadline.due + timedelta(seconds=step.after_seconds)
        warnings = [(at(step), "warning", step) for step in steps if step.after_seconds < 0]
        levels = [(at(step), "level", step) for step in steps if step.after_seconds >= 0]
        return [*warnings, (deadline.due, "breach", None), *levels]

    def _next_event(self) -> tuple[datetime, str, str, PlannedStep | None] | None:
        if self._paused_since is not None:
            return None  # waiting on the customer: no clock runs, no warning fires
        upcoming = []
        for name, deadline in self._deadlines.items():
            if deadline.met_at is not None:
                continue  # a met target stops its chain
            events = self._events(name)
            if deadline.fired < len(events):
                at, kind, step = events[deadline.fired]
                upcoming.append((at, name, kind, step))
        if self._approval_due is not None and self._pending_approval():
            upcoming.append((self._approval_due, "approval", "timeout", None))
        return min(upcoming, key=lambda event: (event[0], event[1])) if upcoming else None

    async def _fire(self, name: str, kind: str, step: PlannedStep | None) -> None:
        deadline = self._deadlines[name]
        deadline.fired += 1
        if kind == "breach":
            deadline.breached_at = workflow.now()
            self._breaches.append(name)
            self._count("redress_deadline_breaches", deadline=name)
            self._event("deadline_missed", "system", f"{name} deadline missed", deadline=name)
            self._publish()
            return
        assert step is not None
        due = deadline.due.strftime("%Y-%m-%d %H:%M UTC")
        if kind == "warning":
            self._event("deadline_warning", "system", f"{name} deadline at {due}", deadline=name,
                        notify=step.notify, page=step.page)
            if step.notify:
                self._tell_staff("deadline_warning", step.notify, deadline=name, due=due)
            if step.page:
                self._tell_staff("deadline_warning", "page", person=step.page, deadline=name, due=due)
            return
        self._escalation_level += 1
        level = str(self._escalation_level)
        self._count("redress_escalations", deadline=name)
        done = []
        if step.notify:
            self._tell_staff("escalation", step.notify, deadline=name, level=level)
            done.append(f"notified {step.notify}")
        if step.page:
            self._tell_staff("escalation", "page", person=step.page, deadline=name, level=level)
            done.append(f"paged {step.page}")
        if step.pay:
            done.append(f"pays {step.pay.kind.value} {step.pay.amount} {step.pay.currency}")
        if step.reassign and step.reassign != self._queue:
            done.append(f"moved from queue {self._queue} to {step.reassign}")
            self._queue = step.reassign
        raise_to = step.raise_severity if step.raise_severity and step.raise_severity.rank > self._severity.rank else None
        if raise_to:
            done.append(f"severity raised to {raise_to.value}")
        self._event("escalated", "system", f"{name} level {level}: {', '.join(done) or 'nothing left to do'}",
                    deadline=name, level=self._escalation_level)
        self._publish()
        if step.pay:
            await self._pay_on_breach(name, step.pay)
        if raise_to:
            await self._change_severity(raise_to, "system", f"escalation level {level} of {name}")

    async def _contacted(self) -> None:
        """The customer heard from us: a new next-update period starts now (when the tier has one)."""
        if "next_update" not in self._deadlines or self._stage.is_final or self._resolution:
            return
        answer = await _activity(ComplaintActivities.compute_deadlines, DeadlineRequest(
            rule_version=self._rule_version, severity=self._severity, start=workflow.now(),
            names=["next_update"], category=self._category, queue=self._queue))
        if "next_update" in answer.deadlines and not self._resolution:
            self._deadlines["next_update"] = Deadline(due=answer.deadlines["next_update"])
            self._deadline_starts["next_update"] = workflow.now()
            self._chains.update(answer.chains)
            self._deadline_epoch += 1
            self._publish()

    async def _approval_timed_out(self) -> None:
        """Nobody at the level asked decided in time: ask the next level, or apply the rules' fallback."""
        self._approval_due = None
        pending = self._pending_approval()
        if pending is None:
            return
        verdict = await _activity(ComplaintActivities.check_proposal, ProposalCheck(
            complaint_id=self._id, rule_version=self._rule_version, kind=pending.kind, amount=pending.amount,
            currency=pending.currency, proposed_by=pending.proposed_by, above_role=pending.required_role))
        if pending.status != ProposalStatus.awaiting_approval:
            return  # decided while the rules were consulted
        if verdict.allowed:
            pending.required_role = verdict.required_role
            pending.eligible_approvers = verdict.eligible_approvers
            self._approver_keys[pending.proposal_id] = dict(verdict.approver_keys)
            if verdict.decision_timeout_seconds:
                self._approval_due = workflow.now() + timedelta(seconds=verdict.decision_timeout_seconds)
            self._deadline_epoch += 1
            self._event("approval_escalated", "rules", f"{pending.proposal_id}: {verdict.reason}",
                        proposal_id=pending.proposal_id, required_role=verdict.required_role)
            role = verdict.required_role or ""
            self._tell_staff("approval_needed", role, proposal=pending, reason=pending.reason, role=role)
            return
        action, cap = verdict.fallback, verdict.fallback_cap
        pending.decided_by = "rules:approval-timeout"
        pending.decided_at = workflow.now()
        self._deadline_epoch += 1
        if action == "approve" and cap is not None and pending.amount <= cap:
            pending.status = ProposalStatus.approved
            self._to_execute.append(pending.proposal_id)
            self._set_stage(Stage.remedy_proposed)
            self._event("remedy_approved", "rules", f"{pending.proposal_id} approved by the fallback: "
                        f"no decision in time, within the cap of {cap} {pending.currency}",
                        proposal_id=pending.proposal_id, rule_version=self._rule_version)
            return
        pending.status = ProposalStatus.rejected
        self._set_stage(Stage.in_progress)
        self._event("remedy_rejected", "rules", f"{pending.proposal_id} rejected by the fallback: no decision in time",
                    proposal_id=pending.proposal_id, rule_version=self._rule_version)
        self._tell_customer("remedy_declined", proposal=pending)
        self._tell_staff("remedy_failed", self._escalate_to, proposal=pending,
                         reason="no approver decided in time; the customer was sent an apology")

    async def _change_severity(self, severity: Severity, actor: str, reason: str) -> None:
        """Re-tier the case: open deadlines are recomputed from the rules and the watcher re-plans."""
        self._recomputing = True
        try:
            previous, self._severity = self._severity, severity
            open_names = await self._recompute_open_deadlines()
            self._event("severity_changed", actor, f"{previous.value} -> {severity.value}: {reason}",
                        deadlines={n: self._deadlines[n].due.isoformat() for n in open_names})
            self._publish()
        finally:
            self._recomputing = False

    async def _recompute_open_deadlines(self) -> list[str]:
        """Due times of unmet deadlines from the case's rules, severity, category and queue; fired steps stay fired."""
        open_names = [name for name, d in self._deadlines.items() if d.met_at is None]
        for name in open_names or [None]:
            answer = await _activity(ComplaintActivities.compute_deadlines, DeadlineRequest(
                rule_version=self._rule_version, severity=self._severity,
                start=self._deadline_starts.get(name, self._complaint.received_at),
                names=[name] if name else [], paused_seconds=self._paused_seconds,
                category=self._category, queue=self._queue))
            self._escalate_to = answer.escalate_to
            self._chains.update(answer.chains)
            if name and name in answer.deadlines:
                self._deadlines[name].due = answer.deadlines[name]
        self._deadline_epoch += 1
        return open_names

    async def _retriage(self, actor: str, reason: str) -> None:
        """Decide the case again with the current rules: the case moves to that version, deadlines follow."""
        self._recomputing = True
        try:
            result = await _activity(ComplaintActivities.triage, TriageFacts.of(self._complaint))
            before = (self._rule_version, self._category, self._severity, self._queue)
            self._triage = result
            self._rule_version, self._category, self._queue = result.rule_version, result.category, result.queue
            self._severity = result.severity
            self._chains = dict(result.chains)
            open_names = await self._recompute_open_deadlines()
            self._event(
                "retriaged", actor,
                f"rules {before[0]} -> {result.rule_version}: {result.category} / {result.severity.value} / "
                f"queue {result.queue} ({reason})",
                previous={"rule_version": before[0], "category": before[1],
                          "severity": before[2].value if before[2] else None, "queue": before[3]},
                rule_version=result.rule_version, fired=result.fired,
                deadlines={n: self._deadlines[n].due.isoformat() for n in open_names},
            )
            self._publish()
        finally:
            self._recomputing = False

    def _breach(self, name: str) -> None:
        """The single-notice escalation of cases started before escalation chains (kept for replay)."""
        self._deadlines[name].breached_at = workflow.now()
        self._breaches.append(name)
        self._escalation_level += 1
        self._event("deadline_missed", "system", f"{name} deadline missed; escalated to {self._escalate_to}",
                    deadline=name, level=self._escalation_level, role=self._escalate_to)
        self._tell_staff("escalation", self._escalate_to, deadline=name, level=str(self._escalation_level))
        self._publish()

    def _meet(self, name: str) -> None:
        deadline = self._deadlines.get(name)
        if deadline and deadline.met_at is None:
            deadline.met_at = workflow.now()
            self._deadline_epoch += 1
            self._publish()

    # ------------------------------------------------------------ notices

    async def _send_notices(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._notices) or self._stop_sending)
            if not self._notices:
                return
            notice = self._notices[0]
            activity = (ComplaintActivities.notify_customer if isinstance(notice, CustomerNotice)
                        else ComplaintActivities.notify_staff)
            try:
                await _activity(activity, notice)
            except ActivityError as failure:
                # The peer refused this message for good (e.g. a bad address): record it, keep the case going.
                self._event("notice_failed", "notifier", f"{notice.template} not delivered: {_reason(failure)}",
                            template=notice.template, key=notice.key)
            self._notices.popleft()

    def _params(self, proposal: ProposalRecord | None = None, **extra: str) -> dict[str, str]:
        params = {
            "complaint_id": self._id,
            "severity": self._severity.value if self._severity else "",
            "queue": self._queue or "",
            **{f"{name}_due": d.due.strftime("%Y-%m-%d %H:%M UTC") for name, d in self._deadlines.items()},
        }
        if proposal:
            params.update(proposal_id=proposal.proposal_id, remedy=proposal.kind.value,
                          amount=str(proposal.amount), currency=proposal.currency)
        return {**params, **extra}

    def _next_key(self, template: str) -> str:
        self._notice_seq += 1
        return f"notice:{self._id}:{self._notice_seq}:{template}"

    def _tell_customer(self, template: str, proposal: ProposalRecord | None = None, **extra: str) -> None:
        self._notices.append(CustomerNotice(
            complaint_id=self._id, key=self._next_key(template), template=template,
            language=self._reply_language(), customer=self._complaint.customer,
            channel=self._complaint.channel, rule_version=self._rule_version,
            params=self._params(proposal, **extra),
        ))

    def _reply_language(self) -> str:
        """The customer's declared language; without one, the language they wrote in (activity input only)."""
        if self._triage and self._triage.reply_language:
            return self._triage.reply_language
        return self._complaint.customer.language

    def _tell_staff(self, template: str, to_role: str, proposal: ProposalRecord | None = None,
                    person: str | None = None, **extra: str) -> None:
        self._notices.append(StaffNotice(
            complaint_id=self._id, key=self._next_key(template), template=template, role=to_role, person=person,
            rule_version=self._rule_version, params=self._params(proposal, **extra),
        ))

    # ------------------------------------------------------------ messages

    @workflow.update
    async def record_response(self, response: ResponseRecord) -> Status:
        is_first = not any(event.kind == "response" for event in self._timeline)
        self._meet("first_response")
        self._assignee = self._assignee or response.agent
        if self._stage in STAGES_BEFORE_RESPONSE:
            self._set_stage(Stage.in_progress)
        sent = " sent to the customer" if response.message else " recorded"
        self._event("response", f"agent:{response.agent}", ("first response" if is_first else "response") + sent)
        if response.message:
            self._tell_customer("progress", message=response.message)
            await self._contacted()
        return self.status()

    @record_response.validator
    def _check_response(self, response: ResponseRecord) -> None:
        self._refuse_unless_open()
        if self._stage == Stage.received:
            raise _refuse("the complaint is still being triaged; try again in a moment")
        if self._stage in (Stage.resolved, Stage.follow_up):
            raise _refuse(f"the case is {self._stage.value}: it waits for the customer's survey answer")

    @workflow.update
    async def propose_remedy(self, proposal: RemedyProposal) -> ProposalAnswer:
        self._checking_proposal = True
        try:
            verdict = await self._check_with_rules(proposal)
            if not verdict.allowed:
                raise _refuse(verdict.reason)
            if self._stage.is_final or self._withdrawal or self._resolution:
                raise _refuse("the case was resolved or withdrawn meanwhile")
            record = self._record_proposal(proposal, verdict, actor=f"agent:{proposal.proposed_by}")
            return ProposalAnswer(proposal_id=record.proposal_id, status=record.status,
                                  required_role=record.required_role)
        finally:
            self._checking_proposal = False

    async def _check_with_rules(self, proposal: RemedyProposal) -> ProposalVerdict:
        return await _activity(ComplaintActivities.check_proposal, ProposalCheck(
            complaint_id=self._id, rule_version=self._rule_version, kind=proposal.kind, amount=proposal.amount,
            currency=proposal.currency, proposed_by=proposal.proposed_by))

    def _record_proposal(self, proposal: RemedyProposal, verdict: ProposalVerdict, actor: str) -> ProposalRecord:
        """The one path every remedy takes, an agent's or a rule's: approval, or straight to execution."""
        proposal_id = f"P{len(self._proposals) + 1}"
        record = ProposalRecord(
            proposal_id=proposal_id, kind=proposal.kind, amount=proposal.amount, currency=proposal.currency,
            reason=proposal.reason, proposed_by=proposal.proposed_by, rule_version=self._rule_version,
            status=ProposalStatus.awaiting_approval if verdict.needs_approval else ProposalStatus.approved,
            required_role=verdict.required_role, eligible_approvers=verdict.eligible_approvers,
            decided_by=None if verdict.needs_approval or actor.startswith("agent:") else actor,
            proposed_at=workflow.now(),
        )
        self._proposals.append(record)
        self._approver_keys[proposal_id] = dict(verdict.approver_keys)
        if verdict.needs_approval and verdict.decision_timeout_seconds and self._pending_approval() is record:
            self._approval_due = workflow.now() + timedelta(seconds=verdict.decision_timeout_seconds)
            self._deadline_epoch += 1
        self._event("remedy_proposed", actor,
                    f"{proposal_id}: {proposal.kind.value} {proposal.amount} {proposal.currency}; {verdict.reason}",
                    proposal_id=proposal_id, rule_version=self._rule_version)
        if verdict.needs_approval:
            role = verdict.required_role or ""
            self._tell_staff("approval_needed", role, proposal=record, reason=proposal.reason, role=role)
        else:
            self._to_execute.append(proposal_id)
        self._set_stage(Stage.awaiting_approval if self._pending_approval() else Stage.remedy_proposed)
        return record

    async def _pay_on_breach(self, name: str, payout: PlannedPayout) -> None:
        """A rule's guarantee ("miss the deadline, we pay"): fired once with its step, paid through the usual path."""
        proposal = RemedyProposal(kind=payout.kind, amount=payout.amount, currency=payout.currency,
                                  reason=payout.reason, proposed_by=f"rules:{name}")
        if payout.needs_approval:
            verdict = await self._check_with_rules(proposal)
            if not verdict.allowed:
                self._event("payout_refused", "rules", f"automatic payout for {name}: {verdict.reason}")
                return
        else:
            verdict = ProposalVerdict(allowed=True, needs_approval=False,
                                      reason=f"automatic: the {name} deadline was missed")
        if not self._stage.is_final and not self._withdrawal:
            self._record_proposal(proposal, verdict, actor=f"rules:{name}")

    @propose_remedy.validator
    def _check_proposal(self, proposal: RemedyProposal) -> None:
        self._refuse_unless_open()
        if self._stage in (Stage.received, Stage.resolved, Stage.follow_up, Stage.pending_customer):
            raise _refuse(f"a remedy cannot be proposed while the case is {self._stage.value}")
        if self._checking_proposal:
            raise _refuse("another proposal is being checked; try again in a moment")
        busy = self._pending_approval() or (self._proposal(self._executing) if self._executing else None)
        if busy or self._to_execute:
            which = busy.proposal_id if busy else self._to_execute[0]
            raise _refuse(f"proposal {which} is still open; it must be decided and carried out first")
        monetary = proposal.kind.value in ("refund", "coupon", "cash", "points")
        if monetary and proposal.amount <= 0:
            raise _refuse(f"amount: a {proposal.kind.value} needs an amount above zero")

    @workflow.update
    def approve_remedy(self, decision: ApprovalDecision) -> ProposalRecord:
        return self._approve(decision)

    def _approve(self, decision: ApprovalDecision) -> ProposalRecord:
        proposal = self._decide(decision, ProposalStatus.approved)
        self._to_execute.append(proposal.proposal_id)
        self._set_stage(Stage.remedy_proposed)
        self._event("remedy_approved", f"approver:{decision.approver}",
                    f"{proposal.proposal_id} approved" + (f": {decision.note}" if decision.note else ""),
                    proposal_id=proposal.proposal_id, rule_version=self._rule_version)
        return proposal

    @approve_remedy.validator
    def _check_approval(self, decision: ApprovalDecision) -> None:
        self._check_decision(decision, "approve")

    @workflow.update
    def reject_remedy(self, decision: ApprovalDecision) -> ProposalRecord:
        return self._reject(decision)

    def _reject(self, decision: ApprovalDecision) -> ProposalRecord:
        proposal = self._decide(decision, ProposalStatus.rejected)
        self._set_stage(Stage.in_progress)
        self._event("remedy_rejected", f"approver:{decision.approver}",
                    f"{proposal.proposal_id} rejected" + (f": {decision.note}" if decision.note else ""),
                    proposal_id=proposal.proposal_id, rule_version=self._rule_version)
        return proposal

    def _decide(self, decision: ApprovalDecision, status: ProposalStatus) -> ProposalRecord:
        """Record a (validated) decision on the pending proposal; its signature can never be used again."""
        proposal = self._pending_approval()
        if decision.signature:
            self._used_signatures.add(decision.signature)
        proposal.status = status
        proposal.decided_by = decision.approver
        proposal.decided_at = workflow.now()
        if self._approval_due is not None:  # only an approval timer needs re-planning (old cases had none)
            self._approval_due = None
            self._deadline_epoch += 1
        return proposal

    @reject_remedy.validator
    def _check_rejection(self, decision: ApprovalDecision) -> None:
        self._check_decision(decision, "reject")

    # The same decisions as signals, for clients that cannot send updates: no answer goes back,
    # so a refused one is written to the timeline (and changes nothing else).
    @workflow.signal(name="approve_remedy")
    def approve_remedy_signal(self, raw: Any) -> None:
        decision = self._signal_argument(ApprovalDecision, raw, "approve_remedy")
        if decision and self._signal_decision_valid(decision, "approve"):
            self._approve(decision)

    @workflow.signal(name="reject_remedy")
    def reject_remedy_signal(self, raw: Any) -> None:
        decision = self._signal_argument(ApprovalDecision, raw, "reject_remedy")
        if decision and self._signal_decision_valid(decision, "reject"):
            self._reject(decision)

    def _signal_argument(self, model: type[M], raw: Any, name: str) -> M | None:
        """The signal's argument, or None after noting in the timeline why it was ignored."""
        value, problems = parse_signal(model, raw)
        if value is None:
            kind = "decision_refused" if name.endswith("_remedy") and "crisis" not in name else "signal_refused"
            self._event(kind, "system", f"{name} signal ignored: " + "; ".join(problems), problems=problems)
        return value

    # ------------------------------------------------------------ crises (from a CrisisWatch workflow)

    @workflow.signal
    async def crisis_declared(self, raw: Any) -> None:
        """This case is one of many about the same thing: raise it (its deadlines follow)."""
        link = self._signal_argument(CrisisLink, raw, "crisis_declared")
        if link is None:
            return
        await workflow.wait_condition(lambda: self._triage is not None and not self._recomputing)
        if link.crisis_id in self._crises or self._stage.is_final:
            return
        self._crises.append(link.crisis_id)
        self._event("crisis_linked", f"crisis:{link.crisis_id}", link.reason, crisis=link.crisis_id)
        if link.raise_to.rank > self._severity.rank and not self._withdrawal:
            await self._change_severity(link.raise_to, f"crisis:{link.crisis_id}", link.reason)

    @workflow.signal
    async def crisis_remedy(self, raw: Any) -> None:
        """The crisis' common remedy, approved once for every linked case: carry it out here, once."""
        remedy = self._signal_argument(CommonRemedy, raw, "crisis_remedy")
        if remedy is None:
            return
        await workflow.wait_condition(lambda: self._triage is not None and not self._checking_proposal)
        key = f"{remedy.crisis_id}:{remedy.proposal_id}"
        if key in self._crisis_remedies:
            return
        self._crisis_remedies.add(key)
        if self._stage.is_final or self._withdrawal or self._resolution:
            self._event("crisis_remedy_skipped", f"crisis:{remedy.crisis_id}",
                        f"{remedy.proposal_id} not applied: the case is {self._stage.value}")
            return
        proposal = RemedyProposal(kind=remedy.kind, amount=remedy.amount, currency=remedy.currency,
                                  reason=f"crisis {remedy.crisis_id}: {remedy.reason}", proposed_by=remedy.proposed_by)
        verdict = ProposalVerdict(allowed=True, needs_approval=False,
                                  reason=f"common remedy {remedy.proposal_id} of crisis {remedy.crisis_id}, "
                                         f"approved by {remedy.approved_by}")
        self._record_proposal(proposal, verdict, actor=remedy.approved_by)

    def _signal_decision_valid(self, decision: ApprovalDecision, verb: str) -> bool:
        try:
            self._check_decision(decision, verb)
        except ApplicationError as refused:
            self._event("decision_refused", f"approver:{decision.approver}",
                        f"{verb} {decision.proposal_id} refused: {refused.message}", proposal_id=decision.proposal_id)
            return False
        return True

    def _check_decision(self, decision: ApprovalDecision, verb: str) -> None:
        self._refuse_unless_open()
        if decision.signature and decision.signature in self._used_signatures:
            raise _refuse("replayed: this signature was already used")
        pending = self._pending_approval()
        if pending is None:
            raise _refuse(f"no remedy awaits approval (the case is {self._stage.value})")
        if decision.proposal_id != pending.proposal_id:
            raise _refuse(f"unknown or stale proposal {decision.proposal_id}; {pending.proposal_id} awaits a decision")
        if decision.approver == pending.proposed_by:
            raise _refuse(f"four eyes: {decision.approver} proposed {pending.proposal_id} and cannot decide it")
        if decision.approver not in pending.eligible_approvers:
            raise _refuse(f"{decision.approver} may not decide {pending.proposal_id}: "
                          f"it needs {pending.required_role} or above")
        self._check_signature(decision, verb, pending)

    def _check_signature(self, decision: ApprovalDecision, verb: str, pending: ProposalRecord) -> None:
        """Proven, not claimed: the approver's key must have signed exactly these terms, recently, once."""
        if not decision.signature or decision.signed_at is None:
            raise _refuse("unsigned: a decision must be signed with the approver's key (redress approve --key ...)")
        now = workflow.now()
        if decision.signed_at < now - signatures.SIGNATURE_MAX_AGE:
            raise _refuse(f"expired: signed at {decision.signed_at.isoformat()}, more than "
                          f"{int(signatures.SIGNATURE_MAX_AGE.total_seconds() // 60)} minutes ago; sign again")
        if decision.signed_at > now + signatures.SIGNATURE_MAX_SKEW:
            raise _refuse(f"signed in the future ({decision.signed_at.isoformat()}): check the signer's clock")
        key = self._approver_keys.get(pending.proposal_id, {}).get(decision.approver)
        if key is None:
            raise _refuse(f"{decision.approver} has no public key in the approver directory")
        terms = signatures.signed_terms(self._id, pending.proposal_id, verb, pending.amount, pending.currency,
                                        decision.approver, decision.signed_at)
        if not signatures.verify(key, terms, decision.signature):
            raise _refuse(f"forged or altered: the signature does not verify with {decision.approver}'s key "
                          f"for {verb} {pending.proposal_id} {pending.amount} {pending.currency}")

    @workflow.update
    def resolve(self, resolution: Resolution) -> Status:
        self._resolution = resolution
        self._meet("resolution")
        self._meet("next_update")
        self._event("resolved", f"agent:{resolution.agent}", resolution.summary)
        return self.status()

    @resolve.validator
    def _check_resolve(self, resolution: Resolution) -> None:
        self._refuse_unless_open()
        if self._resolution is not None or self._stage in (Stage.resolved, Stage.follow_up):
            raise _refuse("the case is already resolved")
        if self._stage not in (Stage.in_progress, Stage.remedy_executed):
            raise _refuse(f"the case is {self._stage.value}: record a response to the customer before resolving")
        if self._checking_proposal or self._pending_approval() or self._executing or self._to_execute:
            raise _refuse("a remedy is still being checked, awaiting approval or being carried out")

    @workflow.update
    def customer_feedback(self, feedback: Feedback) -> Status:
        self._feedback = feedback
        self._event("feedback", "customer", f"CSAT {feedback.score}" + (f": {feedback.comment}" if feedback.comment else ""),
                    score=feedback.score)
        return self.status()

    @customer_feedback.validator
    def _check_feedback(self, feedback: Feedback) -> None:
        self._refuse_unless_open()
        if self._stage != Stage.follow_up or self._feedback is not None:
            raise _refuse(f"the case is {self._stage.value}: feedback is taken after it is resolved")

    @workflow.update
    async def await_customer(self, question: CustomerQuestion) -> Status:
        self._paused_since = workflow.now()
        self._stage_before_pause = self._stage
        self._set_stage(Stage.pending_customer)
        self._deadline_epoch += 1
        self._event("paused", f"agent:{question.agent}", f"waiting on the customer: {question.question}")
        self._tell_customer("progress", message=question.question)
        await self._contacted()
        return self.status()

    @await_customer.validator
    def _check_await_customer(self, question: CustomerQuestion) -> None:
        self._refuse_unless_open()
        if self._stage == Stage.pending_customer:
            raise _refuse("the case already waits on the customer")
        if self._stage not in (Stage.in_progress, Stage.remedy_executed) or self._recomputing:
            raise _refuse(f"the case is {self._stage.value}: only a case being worked on can wait on the customer")

    @workflow.update
    async def customer_replied(self, reply: CustomerReply) -> Status:
        self._resuming = True
        try:
            paused_from, paused_to = self._paused_since, workflow.now()
            open_dues = {n: d.due for n, d in self._deadlines.items() if d.met_at is None}
            shifted = await _activity(ComplaintActivities.shift_for_pause, PauseShift(
                rule_version=self._rule_version, severity=self._severity, deadlines=open_dues,
                paused_from=paused_from, paused_to=paused_to))
            for name, due in shifted.deadlines.items():
                self._deadlines[name].due = due
            self._paused_seconds += shifted.paused_seconds
            self._paused_since = None
            self._set_stage(self._stage_before_pause or Stage.in_progress)
            self._deadline_epoch += 1
            self._event("resumed", "customer", f"customer replied after {shifted.paused_seconds:.0f}s not counted: "
                        f"{reply.message}", paused_seconds=shifted.paused_seconds,
                        deadlines={n: d.isoformat() for n, d in shifted.deadlines.items()})
            self._publish()
            return self.status()
        finally:
            self._resuming = False

    @customer_replied.validator
    def _check_customer_replied(self, reply: CustomerReply) -> None:
        self._refuse_unless_open()
        if self._stage != Stage.pending_customer or self._resuming:
            raise _refuse(f"the case is {self._stage.value}: it is not waiting on the customer")

    @workflow.update
    async def retriage(self, request: Retriage) -> Status:
        await self._retriage(f"supervisor:{request.by}", request.reason)
        return self.status()

    @retriage.validator
    def _check_retriage(self, request: Retriage) -> None:
        self._refuse_unless_open()
        if self._severity is None:
            raise _refuse("the complaint is still being triaged; try again in a moment")
        if self._recomputing or self._resuming:
            raise _refuse("deadlines are being recomputed; try again in a moment")

    @workflow.update
    async def change_severity(self, change: SeverityChange) -> Status:
        await self._change_severity(change.severity, f"supervisor:{change.by}", change.reason)
        return self.status()

    @change_severity.validator
    def _check_severity_change(self, change: SeverityChange) -> None:
        self._refuse_unless_open()
        if self._severity is None:
            raise _refuse("the complaint is still being triaged; try again in a moment")
        if self._recomputing:
            raise _refuse("deadlines are being recomputed; try again in a moment")
        if change.severity == self._severity:
            raise _refuse(f"the case is already {change.severity.value}")

    @workflow.update
    def withdraw(self, withdrawal: Withdrawal) -> Status:
        self._withdrawal = withdrawal
        pending = self._pending_approval()
        if pending:
            pending.status = ProposalStatus.rejected
            pending.decided_by = "withdrawn"
        self._event("withdrawn", withdrawal.by, withdrawal.reason or "withdrawn")
        self._deadline_epoch += 1
        # The main loop ends the case next (after a remedy being paid, if one is); the caller is told the
        # decided stage rather than the one it is leaving. Only the answer changes, so replays are unaffected.
        return self.status().model_copy(update={"stage": Stage.withdrawn})

    @withdraw.validator
    def _check_withdraw(self, withdrawal: Withdrawal) -> None:
        self._refuse_unless_open()
        if self._withdrawal is not None:
            raise _refuse("the complaint is already being withdrawn")

    def _refuse_unless_open(self) -> None:
        if self._stage.is_final:
            raise _refuse(f"the case is {self._stage.value}")

    # ------------------------------------------------------------ queries

    @workflow.query
    def status(self) -> Status:
        return Status(
            complaint_id=self._id, stage=self._stage, severity=self._severity, category=self._category,
            queue=self._queue, assignee=self._assignee, deadlines=self._deadlines,
            escalation_level=self._escalation_level, pending_approval=self._pending_approval(),
            remedies=self._proposals, offers=self._triage.offers if self._triage else [],
            rule_version=self._rule_version, csat=self._csat, reopen_count=self._reopen_count,
            paused_since=self._paused_since, paused_seconds=self._paused_seconds,
            tags=self._triage.tags if self._triage else [],
        )

    @workflow.query
    def timeline(self) -> list[TimelineEvent]:
        return self._timeline

    # ------------------------------------------------------------ helpers

    def _pending_approval(self) -> ProposalRecord | None:
        return next((p for p in self._proposals if p.status == ProposalStatus.awaiting_approval), None)

    def _proposal(self, proposal_id: str) -> ProposalRecord:
        return next(p for p in self._proposals if p.proposal_id == proposal_id)

    def _count(self, metric: str, **attributes: str) -> None:
        """Our own Prometheus counters, through the workflow's meter (not emitted again on replay)."""
        workflow.metric_meter().create_counter(metric, f"Redress: {metric.replace('_', ' ')}").add(1, attributes)

    def _set_stage(self, stage: Stage) -> None:
        if stage != self._stage:
            self._stage = stage
            self._publish()

    def _event(self, kind: str, actor: str, detail: str, **data: Any) -> None:
        self._timeline.append(TimelineEvent(at=workflow.now(), kind=kind, actor=actor, detail=detail, data=data))
        workflow.logger.info(f"{kind}: {detail}", extra={"complaint_id": self._id, "stage": self._stage.value})

    def _publish(self) -> None:
        """Keep search attributes current; only changed ones are sent, to keep history small."""
        wanted: dict[str, Any] = {
            sa.COMPLAINT_STATUS.name: self._stage.value,
            sa.ESCALATION_LEVEL.name: self._escalation_level,
        }
        if self._complaint:
            wanted[sa.CHANNEL.name] = self._complaint.channel.value
            wanted[sa.CUSTOMER_ID.name] = self._complaint.customer.id
        if self._severity:
            wanted.update({sa.SEVERITY.name: self._severity.value, sa.CATEGORY.name: self._category,
                           sa.QUEUE.name: self._queue})
        if any(d.breached_at for d in self._deadlines.values()) and workflow.patched(ESCALATION_CHAINS):
            wanted[sa.BREACHED.name] = True
        for name, key in sa.DUE_KEYS.items():
            deadline = self._deadlines.get(name)
            open_ = deadline and deadline.met_at is None and not self._stage.is_final
            wanted[key.name] = deadline.due if open_ else None
        keys = {key.name: key for key in sa.ALL}
        updates = []
        for name, value in wanted.items():
            if self._search_attributes.get(name) != value:
                self._search_attributes[name] = value
                key = keys[name]
                updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _outcome(self) -> Outcome:
        def met(name: str) -> datetime | None:
            deadline = self._deadlines.get(name)
            return deadline.met_at if deadline else None

        return Outcome(
            complaint_id=self._id, stage=self._stage, severity=self._severity, category=self._category,
            channel=self._complaint.channel if self._complaint else None, queue=self._queue,
            received_at=self._complaint.received_at if self._complaint else None,
            first_response_at=met("first_response"), resolved_at=met("resolution"), ended_at=workflow.now(),
            csat=self._csat, reopen_count=self._reopen_count, breaches=self._breaches,
            # the Outcome outlives erasure (codec.py): amounts and kinds, not the agents' free text
            compensation=[p.model_copy(update={"reason": ""}) for p in self._proposals
                          if p.status == ProposalStatus.executed],
            rule_version=self._rule_version, problems=self._anonymous_problems,
        )
