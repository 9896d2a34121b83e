"""The Complaint workflow: one durable case from intake to close.

Shape of the code:
- `run` walks the lifecycle (triage, acknowledge, work the case, follow up,
  close or reopen) and waits on state that message handlers change;
- message handlers read their message in one place (`workflows/messages.py`),
  validate and record. Work that needs the rules or the approver directory (an
  activity) is handed to the step worker as a `Step`, and the handler waits for
  its answer: no handler awaits an activity itself, and steps run one at a time
  in the order they were asked, so two messages never interleave their changes;
- a deadline watcher sleeps until the earliest unmet deadline's next event and
  escalates on a miss; any change to deadlines bumps `_deadline_epoch`, which
  wakes it to re-plan, so a stale timer never acts;
- a notice sender delivers customer and staff messages in order, each with an
  idempotency key derived from the case and a sequence number.

Money moves only through `_record_proposal` and `_execute`: approved at once for
free kinds and amounts within the rules' automatic limit, for a proposer whose
verified signature and authority cover it, and for the rules' own escalation
payouts; otherwise only on a verified approver's signature (`workflows/approvals.py`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimedOut

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from activities.io import (
        AuthorityCheck,
        CaseEnd,
        CustomerNotice,
        DeadlineRequest,
        Delivery,
        Intake,
        PauseShift,
        PlannedPayout,
        PlannedStep,
        ProposalCheck,
        ProposalVerdict,
        RemedyOrder,
        StaffNotice,
        TriageFacts,
        TriageResult,
        notice_params,
        utc_minute,
    )
    from workflows import approvals, signatures
    from workflows import search_attributes as sa
    from workflows.approvals import Claim
    from workflows.contract import (
        FUTURE_TOLERANCE,
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
        Retriage,
        Severity,
        SeverityChange,
        Stage,
        Status,
        TimelineEvent,
        Withdrawal,
    )
    from workflows.crisis import CommonRemedy, CrisisLink
    from workflows.customer import ComplaintEnded
    from workflows.messages import Undecodable, problems, receives, refusal, takes
    from workflows.steps import Steps

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A step tries three times within a few seconds as a local activity; should a peer stay down, an ordinary
# (durably retried) activity takes over, with backoff and no end.
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3)
PATIENT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                            maximum_interval=timedelta(minutes=1))
STAGES_BEFORE_RESPONSE = (Stage.triaged, Stage.acknowledged, Stage.reopened)
MONETARY = ("refund", "coupon", "cash", "points")


class StepRefused(Exception):
    """A step's peer refused it for good (a non-retryable error), whether it ran as an activity or a local one."""


def _refused_for_good(failure: ActivityError | ApplicationError) -> bool:
    """A local activity's own non-retryable error reaches the workflow unwrapped; an activity's, as its cause."""
    error = failure.cause if isinstance(failure, ActivityError) else failure
    return isinstance(error, ApplicationError) and error.non_retryable


def _reason(failure: ActivityError | ApplicationError) -> str:
    error = failure.cause if isinstance(failure, ActivityError) else failure
    return error.message if isinstance(error, ApplicationError) else str(error)


def _timer_summary(name: str, kind: str) -> str:
    """What the UI shows for a deadline timer: "first_response deadline", "resolution warning"..."""
    return f"{name} deadline" if kind == "breach" else f"{name} {kind}"


def _customer_id_in(raw: Any) -> str | None:
    """The customer id of a complaint refused as invalid, if it has a readable one."""
    customer = raw.get("customer") if isinstance(raw, dict) else None
    value = customer.get("id") if isinstance(customer, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


@workflow.defn(name=WORKFLOW_TYPE)
class Complaint:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        if isinstance(raw, Undecodable) and raw.missing_key:
            # refused like any payload it cannot open (the key id is the sender's word: waiting for it would let
            # anyone jam a complaint id); an operator who rotated keys in the wrong order must hear of it
            workflow.logger.error("complaint refused: its input names a payload key this worker does not hold",
                                  extra={"complaint": workflow.info().workflow_id})
        self._complaint, self._problems = problems(ComplaintInput, raw, root="complaint")
        self._raw_customer_id = _customer_id_in(raw) if self._complaint is None else None
        if self._complaint and self._complaint.received_at > workflow.info().start_time + FUTURE_TOLERANCE:
            self._complaint, self._problems = None, ["complaint.received_at: is in the future"]
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
        self._paused_since: datetime | None = None
        self._stage_before_pause: Stage | None = None
        self._paused_seconds = 0.0
        self._escalation_level = 0
        self._breaches: list[str] = []
        self._proposals: list[ProposalRecord] = []
        self._proposal_asked = False  # a proposal waits for its step: a second one is refused meanwhile
        self._used_signatures: set[str] = set()  # fingerprints (workflows/signatures.py): each counts once
        self._crises: list[str] = []  # crisis watches this case is linked to
        self._crisis_keys: set[str] = set()  # the crises triage reported it to: the only ones it takes a remedy of
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
        self._steps = Steps(refusals=(StepRefused,))
        self._search_attributes: dict[str, Any] = {}
        self._attributes_changed = False
        self._local_running = 0
        self._sending = False
        self._survey_until: datetime | None = None
        self._survey_expired = False
        self._customer_ref: str | None = None  # a refused case's customer, as visibility may show them

    # ------------------------------------------------------------ lifecycle

    @workflow.run
    async def run(self, raw: Any) -> Outcome:
        if self._complaint is None:
            self._stage = Stage.refused
            self._event("refused", "system", "invalid complaint: " + "; ".join(self._problems),
                        problems=self._problems)
            self._steps.close("the complaint was refused as invalid")
            if self._raw_customer_id:  # its input is personal data too: erasure must find this case
                self._customer_ref = await self._call(ComplaintActivities.customer_ref, self._raw_customer_id)
            self._send_search_attributes()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return self._outcome()
        publisher = asyncio.create_task(self._publish_when_settled())

        complaint = self._complaint
        self._event("received", f"channel:{complaint.channel.value}", f"received via {complaint.channel.value}",
                    received_at=complaint.received_at.isoformat())
        self._publish()
        await self._triage_and_acknowledge(complaint)
        self._count("redress_complaints_started", severity=self._severity.value, channel=complaint.channel.value)

        watcher = asyncio.create_task(self._watch_deadlines())
        sender = asyncio.create_task(self._send_notices())
        steps = asyncio.create_task(self._steps.run())
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
        else:
            self._set_stage(Stage.closed)
            self._event("closed", "system", "case closed", csat=self._csat)
        closing = self._customer_notice("withdrawn" if self._withdrawal else "closed")
        self._deadline_epoch += 1
        self._stop_sending = True
        await sender
        await watcher
        told = await self._call(ComplaintActivities.record_case_end, CaseEnd(ended=ComplaintEnded(
            complaint_id=self._id, stage=self._stage.value, ended_at=workflow.now(),
            rule_version=self._rule_version, customer=complaint.customer, channel=complaint.channel,
            language=self._reply_language()), metadata=complaint.metadata, then_tell=closing))
        if not self._sent_along(closing, told):
            await self._send(closing)  # the queue has stopped: the closing notice is sent on its own
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._steps)
        steps.cancel()
        publisher.cancel()
        self._send_search_attributes()
        return self._outcome()

    async def _call(self, method: Any, argument: Any) -> Any:
        """Run one step of the case, first as a local activity (one marker event, no workflow task of its own).

        Should it still fail after LOCAL_RETRY (a peer is down), it goes on as an ordinary
        activity with the usual patience, so a long outage shows in the UI as a retrying
        activity and does not keep this workflow task busy. A peer's refusal for good
        raises StepRefused either way.
        """
        self._local_running += 1
        try:
            return await workflow.execute_local_activity_method(
                method, argument, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=LOCAL_RETRY)
        except StepTimedOut:
            # A local activity that timed out (an overloaded worker) raises ActivityError when it happens but,
            # replayed from its marker, a bare TimeoutError: both must fall back alike, or a case whose worker
            # lost it from cache replays differently and is stuck (a history from the 10,000-case bench,
            # tests/histories/field-local-activity-timeout-fallback.json).
            pass
        except (ActivityError, ApplicationError) as failure:
            if _refused_for_good(failure):
                raise StepRefused(_reason(failure)) from None
        finally:
            self._local_running -= 1
        try:
            return await workflow.execute_activity_method(
                method, argument, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=PATIENT_RETRY)
        except ActivityError as failure:
            raise StepRefused(_reason(failure)) from None

    async def _triage_and_acknowledge(self, complaint: ComplaintInput) -> None:
        """Triage and the acknowledgement as one step; the acknowledgement is completed from the triage."""
        draft = self._customer_notice("acknowledgement")
        answer = await self._call(ComplaintActivities.triage_and_acknowledge, Intake(
            facts=TriageFacts.of(complaint), acknowledgement=draft))
        self._apply_triage(answer.triage)
        acknowledgement = self._customer_notice("acknowledgement", key=draft.key)
        if not self._sent_along(acknowledgement, answer.acknowledgement):
            self._notices.append(acknowledgement)

    def _apply_triage(self, triage: TriageResult) -> None:
        self._triage = triage
        if triage.crisis_key:
            self._crisis_keys.add(triage.crisis_key)
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
        # its notice goes along with the payment, unless notices wait in the queue (they go first)
        along = not self._notices and not self._sending
        if along:
            order.then_tell = self._customer_notice("remedy_executed", proposal=proposal)
        try:
            receipt = await self._call(ComplaintActivities.execute_remedy, order)
        except StepRefused as refused:
            reason = str(refused)
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
        if not along:
            self._tell_customer("remedy_executed", proposal=proposal)
        elif not self._sent_along(order.then_tell, receipt.told):
            self._notices.append(order.then_tell)
        await self._contacted()

    async def _follow_up(self) -> None:
        assert self._resolution is not None and self._triage is not None
        self._set_stage(Stage.resolved)
        self._tell_customer("survey", summary=self._resolution.summary)
        self._set_stage(Stage.follow_up)
        if not await self._survey_answered(timedelta(seconds=self._triage.survey_window_seconds)):
            self._event("survey_expired", "system", "no survey answer within the window")
            return
        if self._withdrawal or self._feedback is None:
            return
        feedback, self._feedback = self._feedback, None
        self._csat = feedback.score
        if feedback.score >= self._triage.reopen_below:
            return
        await self._reopen(feedback)

    async def _survey_answered(self, window: timedelta) -> bool:
        """Wait for the survey answer (or a withdrawal); False when the window closed first.

        The window is one more event for the deadline watcher's single timer, so an
        answer cancels no timer of its own.
        """
        answered = lambda: bool(self._feedback or self._withdrawal)  # noqa: E731
        self._survey_until, self._survey_expired = workflow.now() + window, False
        self._deadline_epoch += 1
        await workflow.wait_condition(lambda: answered() or self._survey_expired)
        self._survey_until = None
        return answered()

    async def _reopen(self, feedback: Feedback) -> None:
        self._reopen_count += 1
        self._resolution = None
        answer = await self._call(ComplaintActivities.compute_deadlines, DeadlineRequest(
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

    # ------------------------------------------------------------ steps

    async def _ask(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Have the step worker do `work` after the steps asked before it (workflows/steps.py)."""
        return await self._steps.ask(work)

    async def _ask_quietly(self, work: Callable[[], Awaitable[Any]]) -> None:
        """For the case's own work (the deadline watcher): a refusal there is noted, never raised."""
        try:
            await self._steps.ask(work)
        except ApplicationError as refused:
            self._event("step_refused", "system", refused.message)

    # ------------------------------------------------------------ deadlines

    async def _watch_deadlines(self) -> None:
        """One timer at a time, for the earliest event; replaced only when something falls due sooner.

        A timer that wakes early (its deadline was met or moved later) just re-plans, so
        meeting a deadline costs no history; and the case ends without cancelling it.
        """
        timer: asyncio.Task | None = None
        timer_at: datetime | None = None
        while not self._stage.is_final:
            upcoming = self._next_event()
            now = workflow.now()
            if upcoming is not None and upcoming[0] <= now:
                await self._handle_due(*upcoming)
                continue
            if upcoming is not None and (timer_at is None or upcoming[0] < timer_at):
                if timer is not None:
                    timer.cancel()
                at, name, kind, _ = upcoming
                timer_at = at
                timer = asyncio.create_task(workflow.sleep(at - now, summary=_timer_summary(name, kind)))
            woken = lambda epoch=self._deadline_epoch, timer=timer: (  # noqa: E731
                self._deadline_epoch != epoch or self._stage.is_final or (timer is not None and timer.done()))
            await workflow.wait_condition(woken)
            if timer is not None and timer.done():
                timer, timer_at = None, None

    async def _handle_due(self, at: datetime, name: str, kind: str, step: PlannedStep | None) -> None:
        if name == "survey":
            self._survey_expired = True
        elif name == "approval":
            self._approval_due = None
            await self._ask_quietly(self._approval_timed_out)
        else:
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
        if self._survey_until is not None and not self._survey_expired:
            upcoming.append((self._survey_until, "survey", "window", None))
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
        due = utc_minute(deadline.due)
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
            pay = step.pay
            await self._ask_quietly(lambda: self._pay_on_breach(name, pay))
        if raise_to:
            await self._ask_quietly(lambda: self._change_severity(raise_to, "system",
                                                                  f"escalation level {level} of {name}"))

    async def _contacted(self) -> None:
        """The customer heard from us: a new next-update period starts now (when the tier has one)."""
        if "next_update" not in self._deadlines or self._stage.is_final or self._resolution:
            return
        answer = await self._call(ComplaintActivities.compute_deadlines, DeadlineRequest(
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
        pending = self._pending_approval()
        if pending is None:
            return
        verdict = await self._call(ComplaintActivities.check_proposal, ProposalCheck(
            complaint_id=self._id, rule_version=self._rule_version, kind=pending.kind, amount=pending.amount,
            currency=pending.currency, proposed_by=pending.proposed_by, above_role=pending.required_role,
            at=workflow.now()))
        if pending.status != ProposalStatus.awaiting_approval:
            return  # decided while the rules were consulted
        if verdict.allowed:
            pending.required_role = verdict.required_role
            pending.eligible_approvers = verdict.eligible_approvers
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
        self._refuse_unless_open()
        if severity == self._severity:
            raise refusal(f"the case is already {severity.value}")
        previous, self._severity = self._severity, severity
        open_names = await self._recompute_open_deadlines()
        self._event("severity_changed", actor, f"{previous.value} -> {severity.value}: {reason}",
                    deadlines={n: self._deadlines[n].due.isoformat() for n in open_names})
        self._publish()

    async def _recompute_open_deadlines(self) -> list[str]:
        """Due times of unmet deadlines from the case's rules, severity, category and queue; fired steps stay fired."""
        open_names = [name for name, d in self._deadlines.items() if d.met_at is None]
        for name in open_names or [None]:
            answer = await self._call(ComplaintActivities.compute_deadlines, DeadlineRequest(
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
        self._refuse_unless_open()
        result = await self._call(ComplaintActivities.triage, TriageFacts.of(self._complaint))
        before = (self._rule_version, self._category, self._severity, self._queue)
        self._triage = result
        if result.crisis_key:
            self._crisis_keys.add(result.crisis_key)
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
            self._sending = True
            try:
                await self._send(self._notices[0])
            finally:
                self._sending = False
            self._notices.popleft()

    async def _send(self, notice: CustomerNotice | StaffNotice) -> None:
        activity = (ComplaintActivities.notify_customer if isinstance(notice, CustomerNotice)
                    else ComplaintActivities.notify_staff)
        try:
            await self._call(activity, notice)
        except StepRefused as refused:
            # The peer refused this message for good (e.g. a bad address): record it, keep the case going.
            self._notice_failed(notice, str(refused))

    def _notice_failed(self, notice: CustomerNotice | StaffNotice, reason: str) -> None:
        self._event("notice_failed", "notifier", f"{notice.template} not delivered: {reason}",
                    template=notice.template, key=notice.key)

    def _sent_along(self, notice: CustomerNotice, delivery: Delivery | None) -> bool:
        """Whether a notice sent within its step's activity is done with: delivered, or refused (recorded).

        False: the notifier did not take it, and it is the caller's to send the usual way.
        """
        if delivery is not None and delivery.outcome == "refused":
            self._notice_failed(notice, delivery.reason)
        return delivery is not None and delivery.outcome != "deferred"

    def _params(self, proposal: ProposalRecord | None = None, **extra: str) -> dict[str, str]:
        params = notice_params(self._id, self._severity, self._queue,
                               {name: d.due for name, d in self._deadlines.items()})
        if proposal:
            params.update(proposal_id=proposal.proposal_id, remedy=proposal.kind.value,
                          amount=str(proposal.amount), currency=proposal.currency)
        return {**params, **extra}

    def _next_key(self, template: str) -> str:
        self._notice_seq += 1
        return f"notice:{self._id}:{self._notice_seq}:{template}"

    def _tell_customer(self, template: str, proposal: ProposalRecord | None = None, **extra: str) -> None:
        self._notices.append(self._customer_notice(template, proposal, **extra))

    def _customer_notice(self, template: str, proposal: ProposalRecord | None = None, key: str | None = None,
                         **extra: str) -> CustomerNotice:
        return CustomerNotice(
            complaint_id=self._id, key=key or self._next_key(template), template=template,
            language=self._reply_language(), customer=self._complaint.customer,
            channel=self._complaint.channel, rule_version=self._rule_version or "",
            params=self._params(proposal, **extra),
        )

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

    # ------------------------------------------------------------ messages: working the case

    @workflow.update
    @takes(ResponseRecord)
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
            await self._ask(self._contacted)
        return self.status()

    @record_response.validator
    @takes(ResponseRecord)
    def _check_response(self, response: ResponseRecord) -> None:
        self._refuse_unless_open()
        if self._stage == Stage.received:
            raise refusal("the complaint is still being triaged; try again in a moment")
        if self._stage in (Stage.resolved, Stage.follow_up):
            raise refusal(f"the case is {self._stage.value}: it waits for the customer's survey answer")

    @workflow.update
    @takes(Resolution)
    def resolve(self, resolution: Resolution) -> Status:
        self._resolution = resolution
        self._meet("resolution")
        self._meet("next_update")
        self._event("resolved", f"agent:{resolution.agent}", resolution.summary)
        return self.status()

    @resolve.validator
    @takes(Resolution)
    def _check_resolve(self, resolution: Resolution) -> None:
        self._refuse_unless_open()
        if self._resolution is not None or self._stage in (Stage.resolved, Stage.follow_up):
            raise refusal("the case is already resolved")
        if self._stage not in (Stage.in_progress, Stage.remedy_executed):
            raise refusal(f"the case is {self._stage.value}: record a response to the customer before resolving")
        if self._proposal_asked or self._pending_approval() or self._executing or self._to_execute:
            raise refusal("a remedy is still being checked, awaiting approval or being carried out")

    @workflow.update
    @takes(Feedback)
    def customer_feedback(self, feedback: Feedback) -> Status:
        self._feedback = feedback
        self._event("feedback", "customer", f"CSAT {feedback.score}" + (f": {feedback.comment}" if feedback.comment else ""),
                    score=feedback.score)
        return self.status()

    @customer_feedback.validator
    @takes(Feedback)
    def _check_feedback(self, feedback: Feedback) -> None:
        self._refuse_unless_open()
        if self._stage != Stage.follow_up or self._feedback is not None:
            raise refusal(f"the case is {self._stage.value}: feedback is taken after it is resolved")

    @workflow.update
    @takes(CustomerQuestion)
    async def await_customer(self, question: CustomerQuestion) -> Status:
        self._paused_since = workflow.now()
        self._stage_before_pause = self._stage
        self._set_stage(Stage.pending_customer)
        self._deadline_epoch += 1
        self._event("paused", f"agent:{question.agent}", f"waiting on the customer: {question.question}")
        self._tell_customer("progress", message=question.question)
        await self._ask(self._contacted)
        return self.status()

    @await_customer.validator
    @takes(CustomerQuestion)
    def _check_await_customer(self, question: CustomerQuestion) -> None:
        self._refuse_unless_open()
        if self._stage == Stage.pending_customer:
            raise refusal("the case already waits on the customer")
        if self._stage not in (Stage.in_progress, Stage.remedy_executed):
            raise refusal(f"the case is {self._stage.value}: only a case being worked on can wait on the customer")

    @workflow.update
    @takes(CustomerReply)
    async def customer_replied(self, reply: CustomerReply) -> Status:
        await self._ask(lambda: self._resume(reply))
        return self.status()

    async def _resume(self, reply: CustomerReply) -> None:
        if self._stage != Stage.pending_customer:
            raise refusal(f"the case is {self._stage.value}: it is not waiting on the customer")
        paused_from, paused_to = self._paused_since, workflow.now()
        open_dues = {n: d.due for n, d in self._deadlines.items() if d.met_at is None}
        shifted = await self._call(ComplaintActivities.shift_for_pause, PauseShift(
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

    @customer_replied.validator
    @takes(CustomerReply)
    def _check_customer_replied(self, reply: CustomerReply) -> None:
        self._refuse_unless_open()
        if self._stage != Stage.pending_customer:
            raise refusal(f"the case is {self._stage.value}: it is not waiting on the customer")

    @workflow.update
    @takes(Retriage)
    async def retriage(self, request: Retriage) -> Status:
        await self._ask(lambda: self._retriage(f"supervisor:{request.by}", request.reason))
        return self.status()

    @retriage.validator
    @takes(Retriage)
    def _check_retriage(self, request: Retriage) -> None:
        self._refuse_unless_open()
        if self._severity is None:
            raise refusal("the complaint is still being triaged; try again in a moment")

    @workflow.update
    @takes(SeverityChange)
    async def change_severity(self, change: SeverityChange) -> Status:
        await self._ask(lambda: self._change_severity(change.severity, f"supervisor:{change.by}", change.reason))
        return self.status()

    @change_severity.validator
    @takes(SeverityChange)
    def _check_severity_change(self, change: SeverityChange) -> None:
        self._refuse_unless_open()
        if self._severity is None:
            raise refusal("the complaint is still being triaged; try again in a moment")
        if change.severity == self._severity:
            raise refusal(f"the case is already {change.severity.value}")

    @workflow.update
    @takes(Withdrawal)
    def withdraw(self, withdrawal: Withdrawal) -> Status:
        self._withdrawal = withdrawal
        pending = self._pending_approval()
        if pending:
            pending.status = ProposalStatus.rejected
            pending.decided_by = "withdrawn"
        self._event("withdrawn", withdrawal.by, withdrawal.reason or "withdrawn")
        self._deadline_epoch += 1
        # The main loop ends the case next (after a remedy being paid, if one is); the caller is told the
        # decided stage rather than the one it is leaving.
        return self.status().model_copy(update={"stage": Stage.withdrawn})

    @withdraw.validator
    @takes(Withdrawal)
    def _check_withdraw(self, withdrawal: Withdrawal) -> None:
        self._refuse_unless_open()
        if self._withdrawal is not None:
            raise refusal("the complaint is already being withdrawn")

    def _refuse_unless_open(self) -> None:
        if self._stage.is_final:
            raise refusal(f"the case is {self._stage.value}")

    def _signal_refused(self, name: str, reason: str) -> None:
        """A signal cannot be refused to its sender: the timeline says what was ignored, and why."""
        kind = "decision_refused" if name in ("approve_remedy", "reject_remedy") else "signal_refused"
        self._event(kind, "system", f"{name} signal ignored: {reason}")

    # ------------------------------------------------------------ messages: remedies and approvals

    @workflow.update
    @takes(RemedyProposal)
    async def propose_remedy(self, proposal: RemedyProposal) -> ProposalAnswer:
        self._proposal_asked = True
        try:
            record = await self._ask(lambda: self._propose(proposal))
        finally:
            self._proposal_asked = False
        return ProposalAnswer(proposal_id=record.proposal_id, status=record.status, required_role=record.required_role)

    @propose_remedy.validator
    @takes(RemedyProposal)
    def _check_proposal(self, proposal: RemedyProposal) -> None:
        if self._proposal_asked:
            raise refusal("another proposal is being checked; try again in a moment")
        self._proposal_admissible(proposal)

    def _proposal_admissible(self, proposal: RemedyProposal) -> Claim | None:
        """Whether the case can take this proposal now; the proposer's claim if it is signed."""
        self._refuse_unless_open()
        if self._stage in (Stage.received, Stage.resolved, Stage.follow_up, Stage.pending_customer):
            raise refusal(f"a remedy cannot be proposed while the case is {self._stage.value}")
        if self._withdrawal or self._resolution:
            raise refusal("the case is being resolved or withdrawn")
        busy = self._pending_approval() or (self._proposal(self._executing) if self._executing else None)
        if busy or self._to_execute:
            which = busy.proposal_id if busy else self._to_execute[0]
            raise refusal(f"proposal {which} is still open; it must be decided and carried out first")
        if proposal.kind.value in MONETARY and proposal.amount <= 0:
            raise refusal(f"amount: a {proposal.kind.value} needs an amount above zero")
        if proposal.signature is None and proposal.signed_at is None:
            return None
        proposal_id = self._next_proposal_id()
        claim = Claim(
            signer=proposal.proposed_by, signed_at=proposal.signed_at, signature=proposal.signature,
            what=f"propose {proposal_id} {proposal.kind.value} {proposal.amount} {proposal.currency}",
            terms=signatures.signed_terms(self._id, proposal_id, "propose", proposal.amount, proposal.currency,
                                          proposal.proposed_by, proposal.signed_at or workflow.now(),
                                          kind=proposal.kind.value))
        approvals.admissible(claim, workflow.now(), self._used_signatures)
        return claim

    async def _propose(self, proposal: RemedyProposal) -> ProposalRecord:
        """The step behind propose_remedy: the rules say who must approve; a proven proposer may grant it."""
        signed = self._proposal_admissible(proposal) is not None
        verdict = await self._call(ComplaintActivities.check_proposal, ProposalCheck(
            complaint_id=self._id, rule_version=self._rule_version, kind=proposal.kind, amount=proposal.amount,
            currency=proposal.currency, proposed_by=proposal.proposed_by, at=workflow.now(), signed=signed,
            auto_used=self._auto_used(proposal.currency)))
        claim = self._proposal_admissible(proposal)  # the case may have moved on while the rules were read
        actor = f"agent:{proposal.proposed_by}"
        if not verdict.needs_approval:
            record = self._record_proposal(proposal, verdict, actor, verdict.reason, automatic=True)
            record.within_auto_limit = verdict.within_auto_limit
            return record
        if claim is not None and verdict.proposer is not None:
            fingerprint = approvals.admissible(claim, workflow.now(), self._used_signatures)
            approvals.proven(claim, verdict.proposer)
            self._used_signatures.add(fingerprint)
            if verdict.proposer.covers:
                return self._record_proposal(
                    proposal, verdict, actor, approved_by=proposal.proposed_by, verified=True,
                    reason=f"within the verified authority of {proposal.proposed_by} "
                           f"({approvals.acting(verdict.proposer)})")
        if not verdict.allowed:
            raise refusal(verdict.reason)
        if claim is None:
            return self._record_proposal(proposal, verdict, actor,
                                         f"{verdict.reason}; unsigned, so the proposer's name is only a claim")
        return self._record_proposal(proposal, verdict, actor, verdict.reason, verified=True)

    async def _pay_on_breach(self, name: str, payout: PlannedPayout) -> None:
        """A rule's guarantee ("miss the deadline, we pay"): fired once with its step, paid through the usual path."""
        self._refuse_unless_open()
        proposal = RemedyProposal(kind=payout.kind, amount=payout.amount, currency=payout.currency,
                                  reason=payout.reason, proposed_by=f"rules:{name}")
        if payout.needs_approval:
            verdict = await self._call(ComplaintActivities.check_proposal, ProposalCheck(
                complaint_id=self._id, rule_version=self._rule_version, kind=payout.kind, amount=payout.amount,
                currency=payout.currency, proposed_by=proposal.proposed_by, at=workflow.now()))
            if verdict.needs_approval and not verdict.allowed:
                self._event("payout_refused", "rules", f"automatic payout for {name}: {verdict.reason}")
                return
            automatic, reason = not verdict.needs_approval, verdict.reason
        else:
            verdict = ProposalVerdict(allowed=True, needs_approval=False, reason="")
            automatic, reason = True, f"automatic: the {name} deadline was missed"
        if not self._stage.is_final and not self._withdrawal:
            self._record_proposal(proposal, verdict, f"rules:{name}", reason, automatic=automatic)

    def _auto_used(self, currency: str) -> Decimal:
        """What this case was granted under the rules' automatic limit so far, in a currency (not what failed)."""
        return sum((p.amount for p in self._proposals if p.within_auto_limit and p.currency == currency
                    and p.status != ProposalStatus.failed), Decimal(0))

    def _next_proposal_id(self) -> str:
        return f"P{len(self._proposals) + 1}"

    def _record_proposal(self, proposal: RemedyProposal, verdict: ProposalVerdict, actor: str, reason: str,
                         approved_by: str | None = None, automatic: bool = False,
                         verified: bool = False) -> ProposalRecord:
        """The one path every remedy takes, an agent's, a rule's or a crisis': approval, or straight to execution.

        Approved at once only when `automatic` (free, within the rules' automatic limit, or a rule's
        own payout) or `approved_by` names a signer whose signature was verified; else it awaits approval.
        """
        proposal_id = self._next_proposal_id()
        approved = automatic or approved_by is not None
        record = ProposalRecord(
            proposal_id=proposal_id, kind=proposal.kind, amount=proposal.amount, currency=proposal.currency,
            reason=proposal.reason, proposed_by=proposal.proposed_by, rule_version=self._rule_version,
            status=ProposalStatus.approved if approved else ProposalStatus.awaiting_approval,
            required_role=None if approved else verdict.required_role,
            eligible_approvers=[] if approved else verdict.eligible_approvers,
            decided_by=approved_by or (actor if automatic and actor.startswith("rules:") else None),
            decided_at=workflow.now() if approved else None,
            proposed_at=workflow.now(), proposer_verified=verified,
        )
        self._proposals.append(record)
        if not approved and verdict.decision_timeout_seconds and self._pending_approval() is record:
            self._approval_due = workflow.now() + timedelta(seconds=verdict.decision_timeout_seconds)
            self._deadline_epoch += 1
        self._event("remedy_proposed", actor,
                    f"{proposal_id}: {proposal.kind.value} {proposal.amount} {proposal.currency}; {reason}",
                    proposal_id=proposal_id, rule_version=self._rule_version, signed=verified)
        if approved:
            self._to_execute.append(proposal_id)
        else:
            role = verdict.required_role or ""
            self._tell_staff("approval_needed", role, proposal=record, reason=proposal.reason, role=role)
        self._set_stage(Stage.awaiting_approval if self._pending_approval() else Stage.remedy_proposed)
        return record

    @workflow.update
    @takes(ApprovalDecision)
    async def approve_remedy(self, decision: ApprovalDecision) -> ProposalRecord:
        return await self._ask(lambda: self._decide(decision, "approve"))

    @approve_remedy.validator
    @takes(ApprovalDecision)
    def _check_approval(self, decision: ApprovalDecision) -> None:
        self._decision_admissible(decision, "approve")

    @workflow.update
    @takes(ApprovalDecision)
    async def reject_remedy(self, decision: ApprovalDecision) -> ProposalRecord:
        return await self._ask(lambda: self._decide(decision, "reject"))

    @reject_remedy.validator
    @takes(ApprovalDecision)
    def _check_rejection(self, decision: ApprovalDecision) -> None:
        self._decision_admissible(decision, "reject")

    # The same decisions as signals, for clients that cannot send updates: no answer goes back,
    # so a refused one is written to the timeline (and changes nothing else).
    @workflow.signal(name="approve_remedy")
    @receives(ApprovalDecision, "approve_remedy")
    async def approve_remedy_signal(self, decision: ApprovalDecision) -> None:
        self._decision_admissible(decision, "approve")
        await self._ask(lambda: self._decide(decision, "approve"))

    @workflow.signal(name="reject_remedy")
    @receives(ApprovalDecision, "reject_remedy")
    async def reject_remedy_signal(self, decision: ApprovalDecision) -> None:
        self._decision_admissible(decision, "reject")
        await self._ask(lambda: self._decide(decision, "reject"))

    def _decision_admissible(self, decision: ApprovalDecision, verb: str) -> tuple[ProposalRecord, Claim, str]:
        """What can be checked without the directory: a pending proposal, four eyes, a fresh unused signature."""
        self._refuse_unless_open()
        if decision.signature and signatures.fingerprint(decision.signature) in self._used_signatures:
            raise refusal("replayed: this signature was already used")
        pending = self._pending_approval()
        if pending is None:
            raise refusal(f"no remedy awaits approval (the case is {self._stage.value})")
        if decision.proposal_id != pending.proposal_id:
            raise refusal(f"unknown or stale proposal {decision.proposal_id}; {pending.proposal_id} awaits a decision")
        if decision.approver == pending.proposed_by:
            raise refusal(f"four eyes: {decision.approver} proposed {pending.proposal_id} and cannot decide it")
        claim = Claim(
            signer=decision.approver, signed_at=decision.signed_at, signature=decision.signature,
            what=f"{verb} {pending.proposal_id} {pending.amount} {pending.currency}",
            terms=signatures.signed_terms(self._id, pending.proposal_id, verb, pending.amount, pending.currency,
                                          decision.approver, decision.signed_at or workflow.now()))
        fingerprint = approvals.admissible(claim, workflow.now(), self._used_signatures)
        return pending, claim, fingerprint

    async def _decide(self, decision: ApprovalDecision, verb: str) -> ProposalRecord:
        """The step behind a decision: the live directory's key for the approver must verify it, at their level."""
        pending, claim, _ = self._decision_admissible(decision, verb)
        authority = await self._call(ComplaintActivities.authority, AuthorityCheck(
            complaint_id=self._id, rule_version=self._rule_version, person=decision.approver, kind=pending.kind,
            amount=pending.amount, currency=pending.currency, at=workflow.now(), at_least=pending.required_role))
        pending, claim, fingerprint = self._decision_admissible(decision, verb)  # decided or timed out meanwhile?
        approvals.proven(claim, authority)
        if not (authority.at_level and authority.covers):
            raise refusal(f"{decision.approver} may not decide {pending.proposal_id}: it needs "
                          f"{pending.required_role} or above, with authority over {pending.amount} {pending.currency}")
        self._used_signatures.add(fingerprint)
        pending.status = ProposalStatus.approved if verb == "approve" else ProposalStatus.rejected
        pending.decided_by = decision.approver
        pending.decided_at = workflow.now()
        if self._approval_due is not None:
            self._approval_due = None
            self._deadline_epoch += 1
        note = f": {decision.note}" if decision.note else ""
        actor = f"approver:{decision.approver}"
        standing = approvals.acting(authority)
        if verb == "approve":
            self._to_execute.append(pending.proposal_id)
            self._set_stage(Stage.remedy_proposed)
            self._event("remedy_approved", actor, f"{pending.proposal_id} approved{note}",
                        proposal_id=pending.proposal_id, rule_version=self._rule_version, verified=True,
                        role=standing)
        else:
            self._set_stage(Stage.in_progress)
            self._event("remedy_rejected", actor, f"{pending.proposal_id} rejected{note}",
                        proposal_id=pending.proposal_id, rule_version=self._rule_version, verified=True,
                        role=standing)
        return pending

    # ------------------------------------------------------------ crises (from a CrisisWatch workflow)

    @workflow.signal
    @receives(CrisisLink)
    async def crisis_declared(self, link: CrisisLink) -> None:
        """This case is one of many about the same thing: raise it (its deadlines follow)."""
        await self._ask(lambda: self._link_crisis(link))

    async def _link_crisis(self, link: CrisisLink) -> None:
        if link.crisis_id in self._crises or self._stage.is_final:
            return
        self._crises.append(link.crisis_id)
        self._event("crisis_linked", f"crisis:{link.crisis_id}", link.reason, crisis=link.crisis_id)
        if link.raise_to.rank > self._severity.rank and not self._withdrawal:
            await self._change_severity(link.raise_to, f"crisis:{link.crisis_id}", link.reason)

    @workflow.signal
    @receives(CommonRemedy)
    async def crisis_remedy(self, remedy: CommonRemedy) -> None:
        """The crisis' common remedy, signed once for every linked case: verified here, carried out here, once."""
        await self._ask(lambda: self._take_common_remedy(remedy))

    async def _take_common_remedy(self, remedy: CommonRemedy) -> None:
        """Verified here, whatever the crisis watch said: a signal may come from anyone with namespace access."""
        key = f"{remedy.crisis_id}:{remedy.proposal_id}"
        if remedy.crisis_id not in self._crises or remedy.crisis_id not in self._crisis_keys:
            # linked by the watch's signal, and about the same thing by the case's own triage: a signal
            # alone (anyone can send one) does not make a case part of a crisis' remedy
            raise refusal(f"this case is not linked to crisis {remedy.crisis_id}")
        if key in self._crisis_remedies:
            return
        if self._stage.is_final or self._withdrawal or self._resolution:
            self._crisis_remedies.add(key)
            self._event("crisis_remedy_skipped", f"crisis:{remedy.crisis_id}",
                        f"{remedy.proposal_id} not applied: the case is {self._stage.value}")
            return
        proposal = RemedyProposal(kind=remedy.kind, amount=remedy.amount, currency=remedy.currency,
                                  reason=f"crisis {remedy.crisis_id}: {remedy.reason}", proposed_by=remedy.proposed_by)
        if remedy.signed_by is None:
            verdict = await self._call(ComplaintActivities.check_proposal, ProposalCheck(
                complaint_id=self._id, rule_version=self._rule_version, kind=remedy.kind, amount=remedy.amount,
                currency=remedy.currency, proposed_by=remedy.proposed_by, at=workflow.now()))
            if verdict.needs_approval:
                raise refusal(f"unsigned: {remedy.proposal_id} of crisis {remedy.crisis_id} needs an approver's "
                              f"signature on this case ({verdict.reason})")
            approver, reason = None, f"common remedy {remedy.proposal_id} of crisis {remedy.crisis_id}: {verdict.reason}"
        else:
            claim = Claim(
                signer=remedy.signed_by, signed_at=remedy.signed_at, signature=remedy.signature,
                what=f"{remedy.decision} {remedy.proposal_id} of crisis {remedy.crisis_id}: "
                     f"{remedy.amount} {remedy.currency}",
                terms=signatures.signed_terms(remedy.crisis_id, remedy.proposal_id, remedy.decision, remedy.amount,
                                              remedy.currency, remedy.signed_by, remedy.signed_at or workflow.now(),
                                              kind=remedy.kind.value, scope=signatures.CRISIS))
            fingerprint = approvals.admissible(claim, workflow.now(), self._used_signatures,
                                               max_age=signatures.CRISIS_SIGNATURE_MAX_AGE)
            authority = await self._call(ComplaintActivities.authority, AuthorityCheck(
                complaint_id=self._id, rule_version=self._rule_version, person=remedy.signed_by, kind=remedy.kind,
                amount=remedy.amount, currency=remedy.currency, at=workflow.now()))
            approvals.proven(claim, authority)
            if not authority.covers:
                raise refusal(f"{remedy.signed_by} may not grant {remedy.amount} {remedy.currency} of "
                              f"{remedy.kind.value} on this case")
            approver = remedy.signed_by
            reason = (f"common remedy {remedy.proposal_id} of crisis {remedy.crisis_id}, signed by "
                      f"{remedy.signed_by} ({approvals.acting(authority)}) and verified")
            if key not in self._crisis_remedies:
                self._used_signatures.add(fingerprint)
        if key in self._crisis_remedies:
            return
        self._crisis_remedies.add(key)
        if self._stage.is_final or self._withdrawal or self._resolution:
            self._event("crisis_remedy_skipped", f"crisis:{remedy.crisis_id}",
                        f"{remedy.proposal_id} not applied: the case is {self._stage.value}")
            return
        verdict = ProposalVerdict(allowed=True, needs_approval=False, reason="")
        actor = f"approver:{approver}" if approver else f"crisis:{remedy.crisis_id}"
        self._record_proposal(proposal, verdict, actor, reason, approved_by=approver, automatic=approver is None)

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
        """Add to the timeline. The log line names the kind only: details quote the customer's and agents' words."""
        self._timeline.append(TimelineEvent(at=workflow.now(), kind=kind, actor=actor, detail=detail, data=data))
        workflow.logger.info(kind, extra={"complaint_id": self._id, "stage": self._stage.value})

    def _publish(self) -> None:
        """Mark the search attributes as changed; they are sent once things settle (`_publish_when_settled`)."""
        self._attributes_changed = True

    def _settled(self) -> bool:
        """Nothing this workflow task has started is still running, and nothing queued is about to start.

        A step that has fallen back to an ordinary activity (a peer is down) does not count:
        the search attributes must not wait for a peer. Only the number of events depends
        on this, never what the case does.
        """
        notice_waits = bool(self._notices) and not self._sending
        return self._local_running == 0 and not notice_waits and not self._to_execute

    async def _publish_when_settled(self) -> None:
        """One upsert per burst of changes (usually one per workflow task) instead of one per change."""
        while True:
            await workflow.wait_condition(lambda: self._attributes_changed and self._settled())
            await asyncio.sleep(0)  # no timer: lets the coroutines woken with this one act first (they may change more)
            if self._settled():
                self._send_search_attributes()

    def _send_search_attributes(self) -> None:
        """Send the search attributes that changed since last sent (none: no event)."""
        self._attributes_changed = False
        wanted: dict[str, Any] = {
            sa.COMPLAINT_STATUS.name: self._stage.value,
            sa.ESCALATION_LEVEL.name: self._escalation_level,
        }
        if self._complaint:
            wanted[sa.CHANNEL.name] = self._complaint.channel.value
        customer_ref = self._triage.customer_ref if self._triage else self._customer_ref
        if customer_ref:
            wanted[sa.CUSTOMER_ID.name] = customer_ref
        if self._severity:
            wanted.update({sa.SEVERITY.name: self._severity.value, sa.CATEGORY.name: self._category,
                           sa.QUEUE.name: self._queue})
        if any(d.breached_at for d in self._deadlines.values()):
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
            rule_version=self._rule_version, problems=self._problems,
        )
