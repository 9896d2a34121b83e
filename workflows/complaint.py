"""The Complaint workflow: one durable case from intake to close.

Shape of the code:
- `run` walks the lifecycle (triage, acknowledge, work the case, follow up,
  close or reopen) and waits on the case's state (`CaseState`,
  workflows/case_state.py), which message handlers change;
- message handlers read their message in one place (workflows/messages.py),
  validate and record. Work that needs the rules or the approver directory (an
  activity) is handed to the step worker (workflows/steps.py) and the handler
  waits for its answer: no handler awaits an activity itself, and steps run one
  at a time in the order they were asked, so two messages never interleave;
- the deadline watcher sleeps until the next event the planner names
  (workflows/deadlines.py) and escalates on a miss; whenever that event changes
  (a deadline met, moved, paused) it plans again, so a stale timer never acts;
- notices to the customer and staff go out in order (workflows/notices.py);
- proposals, approvals and payouts follow workflows/remedies.py: money moves
  only there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from activities.io import (
        TEAM_CLOCK,
        CaseEnd,
        DeadlineRequest,
        Intake,
        KeyChange,
        PauseShift,
        PlannedStep,
        TriageFacts,
        TriageResult,
        is_team_clock,
        utc_minute,
    )
    from activities.rules.schema import Template
    from redress import search_attributes as sa
    from redress.contract import (
        FUTURE_TOLERANCE,
        WORKFLOW_ID_PREFIX,
        WORKFLOW_TYPE,
        ApprovalDecision,
        ComplaintInput,
        ContactCorrection,
        CustomerQuestion,
        CustomerReply,
        DataExported,
        Deadline,
        Evidence,
        EvidenceRecord,
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
        Undecodable,
        Withdrawal,
    )
    from redress.crises import CommonRemedy, CrisisLink
    from redress.customers import ComplaintEnded
    from workflows.case_state import HANDOVER, CaseHandover, CaseState
    from workflows.deadlines import Due, DueEvent, chain, next_due
    from workflows.messages import problems, receives, refusal, takes
    from workflows.notices import Notices
    from workflows.remedies import Remedies
    from workflows.steps import StepRunner, Steps

STAGES_BEFORE_RESPONSE = (Stage.triaged, Stage.acknowledged, Stage.reopened)
DECISIONS = ("approve_remedy", "reject_remedy")
MAX_CORRECTIONS = 20  # contact corrections per case: each is a new run and a key generation
MAX_EVIDENCE = 100  # each piece is a timeline event and a status entry: bounded like every list a message grows


def _customer_id_in(raw: Any) -> str | None:
    """The customer id of a complaint refused as invalid, if it has a readable one."""
    customer = raw.get("customer") if isinstance(raw, dict) else None
    value = customer.get("id") if isinstance(customer, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


def _handover_in(raw: Any) -> tuple[CaseState, int] | None:
    """The case handed over by its previous run (a contact correction) and its notice count, or None for a new
    complaint.

    Only a run that continues this very case takes it: anyone may start a workflow with any input,
    but only the case's own run can continue it (a handed-over state carries approvals and payouts).
    """
    info = workflow.info()
    # a cron run and a retried run have a continued run id too, from any start: only continue-as-new counts
    ours = info.continued_run_id is not None and not info.cron_schedule and info.attempt == 1
    if not (ours and isinstance(raw, dict) and raw.get("handover") == HANDOVER):
        return None
    try:
        handover = CaseHandover.model_validate(raw)
        state = handover.state()
    except ValueError:
        return None
    return (state, handover.notices_sequence) if 1 < state.key_generation <= MAX_CORRECTIONS + 1 else None


@workflow.defn(name=WORKFLOW_TYPE)
class Complaint:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        handover = _handover_in(raw)
        self._resumed = handover is not None  # this run continues a case (a contact correction)
        self._handing_over = False  # a contact correction: this run hands the case to the next once settled
        self._correcting = False
        self.run_step = StepRunner()
        self.steps = Steps()
        self._sent_attributes: dict[str, Any] = {}
        if handover is not None:  # the case goes on from where its previous run handed it over
            self._refused_input = None
            self.case, sequence = handover
            self.notices = Notices(self.case, self.run_step, sequence=sequence)
            self.remedies = Remedies(self.case, self.run_step, self.notices)
            return
        if isinstance(raw, Undecodable) and raw.missing_key:
            # refused like any payload it cannot open (the key id is the sender's word: waiting for it would let
            # anyone jam a complaint id); an operator who rotated keys in the wrong order must hear of it
            workflow.logger.error(
                "complaint refused: its input names a payload key this worker does not hold",
                extra={"complaint": workflow.info().workflow_id},
            )
        complaint, found = problems(ComplaintInput, raw, root="complaint")
        if complaint and complaint.received_at > workflow.info().start_time + FUTURE_TOLERANCE:
            complaint, found = None, ["complaint.received_at: is in the future"]
        # what a refused complaint sent, as it came (personal data too: a subject-access export must show it)
        self._refused_input = raw if complaint is None and not isinstance(raw, Undecodable) else None
        self.case = CaseState(
            id=workflow.info().workflow_id.removeprefix(WORKFLOW_ID_PREFIX),
            complaint=complaint,
            problems=found,
            raw_customer_id=_customer_id_in(raw) if complaint is None else None,
        )
        self.notices = Notices(self.case, self.run_step)
        self.remedies = Remedies(self.case, self.run_step, self.notices)

    # ------------------------------------------------------------ lifecycle

    @workflow.run
    async def run(self, raw: Any) -> Outcome:
        case = self.case
        if case.complaint is None:
            case.stage = Stage.refused
            case.event("refused", "system", "invalid complaint: " + "; ".join(case.problems), problems=case.problems)
            self.steps.close("the complaint was refused as invalid")
            if case.raw_customer_id:  # its input is personal data too: erasure must find this case
                case.customer_ref = await self.run_step(ComplaintActivities.customer_ref, case.raw_customer_id)
            self._send_search_attributes()
            await workflow.wait_condition(workflow.all_handlers_finished)
            return case.outcome()
        publisher = asyncio.create_task(self._publish_when_settled())
        if self._resumed:
            return await self._carry_on(publisher)

        complaint = case.complaint
        case.event(
            "received",
            f"channel:{complaint.channel.value}",
            f"received via {complaint.channel.value}",
            received_at=complaint.received_at.isoformat(),
        )
        case.publish()
        await self._triage_and_acknowledge(complaint)
        case.count("redress_complaints_started", severity=case.tier.value, channel=complaint.channel.value)

        watcher, sender, steps = self._start_working()
        await workflow.wait_condition(lambda: not self.notices.queue)
        if not any(e.kind == "notice_failed" for e in case.timeline):
            if case.stage == Stage.triaged:
                case.set_stage(Stage.acknowledged)
            case.acknowledged_at = workflow.now()
            case.event("acknowledged", "system", "acknowledgement sent to the customer")
            await self._contacted()
        return await self._lifecycle(publisher, watcher, sender, steps)

    async def _carry_on(self, publisher: asyncio.Task[None]) -> Outcome:
        """A run that continues the case after a contact correction: the earlier key is shredded first (what was
        sealed with it, the old contact details included, can no longer be read), then the case goes on."""
        case = self.case
        remaining = await self.run_step(
            ComplaintActivities.shred_case_keys,
            KeyChange(workflow_id=workflow.info().workflow_id, generation=case.key_generation),
        )
        case.event(
            "old_contact_shredded",
            "system",
            "the key the earlier contact details were sealed with is deleted: they can no longer be read",
            store_notes=remaining,
        )
        case.publish()
        return await self._lifecycle(publisher, *self._start_working())

    def _start_working(self) -> tuple[asyncio.Task[None], asyncio.Task[None], asyncio.Task[None]]:
        """The case's background work: its deadline watcher, its notice sender, its queue of steps."""
        watcher = asyncio.create_task(self._watch_deadlines())
        sender = asyncio.create_task(self.notices.send_all())
        steps = asyncio.create_task(self.steps.run())
        return watcher, sender, steps

    async def _lifecycle(
        self,
        publisher: asyncio.Task[None],
        watcher: asyncio.Task[None],
        sender: asyncio.Task[None],
        steps: asyncio.Task[None],
    ) -> Outcome:
        """From the acknowledgement to the close: work the case, follow up, reopen; or hand it to a new run."""
        case = self.case
        complaint = case.received
        while True:
            await self._work_case()
            if self._handing_over:
                await self._continue_in_new_run()  # returns only when a remedy was approved meanwhile
                continue
            if case.withdrawal:
                break
            await self._follow_up()
            if case.stage != Stage.reopened:
                break

        if case.withdrawal:
            case.set_stage(Stage.withdrawn)
        else:
            case.set_stage(Stage.closed)
            case.event("closed", "system", "case closed", csat=case.csat)
        closing = self.notices.for_customer(Template.withdrawn if case.withdrawal else Template.closed)
        self.notices.stop()
        await sender
        await watcher
        told = await self.run_step(
            ComplaintActivities.record_case_end,
            CaseEnd(
                ended=ComplaintEnded(
                    complaint_id=case.id,
                    stage=case.stage.value,
                    ended_at=workflow.now(),
                    rule_version=case.rule_version,
                    customer=complaint.customer,
                    channel=complaint.channel,
                    language=case.reply_language(),
                ),
                metadata=complaint.metadata,
                then_tell=closing,
            ),
        )
        if not self.notices.sent_along(closing, told):
            await self.notices.send(closing)  # the queue has stopped: the closing notice is sent on its own
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self.steps)
        steps.cancel()
        publisher.cancel()
        self._send_search_attributes()
        return case.outcome()

    async def _triage_and_acknowledge(self, complaint: ComplaintInput) -> None:
        """Triage and the acknowledgement as one step; the acknowledgement is completed from the triage."""
        draft = self.notices.for_customer(Template.acknowledgement)
        answer = await self.run_step(
            ComplaintActivities.triage_and_acknowledge, Intake(facts=TriageFacts.of(complaint), acknowledgement=draft)
        )
        self._apply_triage(answer.triage)
        acknowledgement = self.notices.for_customer(Template.acknowledgement, key=draft.key)
        if not self.notices.sent_along(acknowledgement, answer.acknowledgement):
            self.notices.queue.append(acknowledgement)

    def _apply_triage(self, triage: TriageResult) -> None:
        case = self.case
        case.triage = triage
        if triage.crisis_key:
            case.crisis_keys.add(triage.crisis_key)
        case.rule_version = triage.rule_version
        case.severity = triage.severity
        case.category = triage.category
        case.queue = triage.queue
        case.escalate_to = triage.escalate_to
        case.deadlines = {name: Deadline(due=due) for name, due in triage.deadlines.items()}
        case.deadline_starts = {name: case.received.received_at for name in triage.deadlines}
        case.chains = dict(triage.chains)
        case.stage = Stage.triaged
        case.event(
            "triaged",
            "rules",
            f"{triage.category} / {triage.severity.value} / queue {triage.queue} (rules {triage.rule_version})",
            rule_version=triage.rule_version,
            fired=triage.fired,
            language=triage.text_language,
            sentiment=triage.sentiment,
            deadlines={k: v.isoformat() for k, v in triage.deadlines.items()},
        )
        flag = triage.claimant_flag
        if flag is not None:
            new = flag.complaint_id == case.id
            case.event(
                "claimant_flagged" if new else "claimant_flag_noted",
                flag.by if flag.by.startswith("rules:") else f"supervisor:{flag.by}",
                f"{'flagged for review' if new else 'the customer is flagged for review'}: {flag.reason}; "
                "every remedy on this case needs an approver's decision",
                since=flag.at.isoformat(),
            )
        if triage.assignee:
            case.assignee = triage.assignee
            case.event(
                "assigned",
                "desk",
                triage.assignment or f"assigned to {triage.assignee}",
                agent=triage.assignee,
            )
        case.publish()

    async def _work_case(self) -> None:
        """Until the agent resolves the case (or it is withdrawn), carry out remedies as they are cleared."""
        case = self.case
        while True:
            await workflow.wait_condition(
                lambda: bool(case.to_execute or case.resolution or case.withdrawal or self._handing_over)
            )
            if case.withdrawal:
                return
            if case.to_execute:  # an approved remedy is paid before the case hands over to its next run
                if await self.remedies.execute(case.to_execute.popleft()):
                    await self._contacted()
                continue
            return  # resolved, or handing over

    async def _continue_in_new_run(self) -> None:
        """Continue as new once nothing is in flight: the next run gets the whole case, sealed with the new key.

        A remedy approved meanwhile is paid first (this returns, and the case's work pays it).
        """
        case = self.case

        def settled() -> bool:
            quiet = not self.notices.queue and not self.notices.sending and not case.executing
            return quiet and not self.steps and self.run_step.local_running == 0 and workflow.all_handlers_finished()

        await workflow.wait_condition(lambda: bool(case.to_execute) or settled())
        if not case.to_execute:
            workflow.continue_as_new(CaseHandover.of(case, self.notices.sequence))

    async def _follow_up(self) -> None:
        case = self.case
        assert case.resolution is not None and case.triage is not None
        case.set_stage(Stage.resolved)
        self.notices.tell_customer(Template.survey, summary=case.resolution.summary)
        case.set_stage(Stage.follow_up)
        if not await self._survey_answered(timedelta(seconds=case.triage.survey_window_seconds)):
            case.event("survey_expired", "system", "no survey answer within the window")
            return
        if case.withdrawal or case.feedback is None:
            return
        feedback, case.feedback = case.feedback, None
        case.csat = feedback.score
        if feedback.score >= case.triage.reopen_below:
            return
        await self._reopen(feedback)

    async def _survey_answered(self, window: timedelta) -> bool:
        """Wait for the survey answer (or a withdrawal); False when the window closed first.

        The window is one more event for the deadline watcher's single timer, so an
        answer cancels no timer of its own.
        """
        case = self.case

        def answered() -> bool:
            return bool(case.feedback or case.withdrawal)

        case.survey_until, case.survey_expired = workflow.now() + window, False
        await workflow.wait_condition(lambda: answered() or case.survey_expired)
        case.survey_until = None
        return answered()

    async def _reopen(self, feedback: Feedback) -> None:
        case = self.case
        assert case.triage is not None
        case.reopen_count += 1
        case.resolution = None
        answer = await self.run_step(
            ComplaintActivities.compute_deadlines,
            DeadlineRequest(
                rule_version=case.rule_version,
                severity=case.tier,
                start=workflow.now(),
                names=["resolution", "next_update"] if "next_update" in case.deadlines else ["resolution"],
                category=case.category,
                queue=case.queue,
            ),
        )
        case.deadlines.update({name: Deadline(due=due) for name, due in answer.deadlines.items()})
        case.deadline_starts.update({name: workflow.now() for name in answer.deadlines})
        case.chains.update(answer.chains)
        case.set_stage(Stage.reopened)
        case.event(
            "reopened",
            "customer",
            f"CSAT {feedback.score} is below {case.triage.reopen_below}",
            score=feedback.score,
            resolution_due=answer.deadlines["resolution"].isoformat(),
        )
        self.notices.tell_customer(Template.reopened)

    # ------------------------------------------------------------ steps

    async def _ask(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Have the step worker do `work` after the steps asked before it (workflows/steps.py)."""
        return await self.steps.ask(work)

    async def _ask_quietly(self, work: Callable[[], Awaitable[Any]]) -> None:
        """For the case's own work (the deadline watcher): a refusal there is noted, never raised."""
        try:
            await self.steps.ask(work)
        except ApplicationError as refused:
            self.case.event("step_refused", "system", refused.message)

    # ------------------------------------------------------------ deadlines

    def _next_due(self) -> DueEvent | None:
        case = self.case
        return next_due(
            case.deadlines,
            case.chains,
            case.escalate_to,
            paused=case.paused_since is not None,
            approval_due=case.approval_due if case.pending_approval() else None,
            survey_until=case.survey_until if not case.survey_expired else None,
        )

    async def _watch_deadlines(self) -> None:
        """One timer at a time, for the earliest event; replaced only when something falls due sooner.

        A timer that wakes early (its deadline was met or moved later) just re-plans, so
        meeting a deadline costs no history; and the case ends without cancelling it.
        """
        case = self.case
        timer: asyncio.Task[None] | None = None
        timer_at = None
        while not case.stage.is_final:
            upcoming = self._next_due()
            now = workflow.now()
            if upcoming is not None and upcoming.at <= now:
                await self._handle_due(upcoming)
                continue
            if upcoming is not None and (timer_at is None or upcoming.at < timer_at):
                if timer is not None:
                    timer.cancel()
                timer_at = upcoming.at
                timer = asyncio.create_task(workflow.sleep(upcoming.at - now, summary=upcoming.summary()))
            await workflow.wait_condition(self._woken(upcoming, timer))
            if timer is not None and timer.done():
                timer, timer_at = None, None

    def _woken(self, planned: DueEvent | None, timer: asyncio.Task[None] | None) -> Callable[[], bool]:
        """When the watcher plans again: the case ended, its timer fired, or the next event changed."""

        def woken() -> bool:
            fired = timer is not None and timer.done()
            return self.case.stage.is_final or fired or self._next_due() != planned

        return woken

    async def _handle_due(self, due: DueEvent) -> None:
        if due.kind == Due.survey:
            self.case.survey_expired = True
        elif due.kind == Due.approval:
            self.case.approval_due = None
            await self._ask_quietly(self.remedies.approval_timed_out)
        else:
            await self._fire(due)

    async def _fire(self, due: DueEvent) -> None:
        case = self.case
        assert due.deadline is not None
        name, step = due.deadline, due.step
        deadline = case.deadlines[name]
        deadline.fired += 1
        team = is_team_clock(name)  # a team's own clock: its chain stays inside the team
        if due.kind == Due.breach:
            deadline.breached_at = workflow.now()
            (case.team_breaches if team else case.breaches).append(name)
            case.count("redress_team_clock_breaches" if team else "redress_deadline_breaches", deadline=name)
            case.event("deadline_missed", "system", f"{name} deadline missed", deadline=name, team=team)
            case.publish()
            return
        assert step is not None
        notices = self.notices
        at = utc_minute(deadline.due)
        if due.kind == Due.warning:
            case.event(
                "deadline_warning",
                "system",
                f"{name} deadline at {at}",
                deadline=name,
                notify=step.notify,
                page=step.page,
            )
            if step.notify:
                notices.tell_staff(Template.deadline_warning, step.notify, deadline=name, due=at)
            if step.page:
                notices.tell_staff(Template.deadline_warning, "page", person=step.page, deadline=name, due=at)
            return
        if team:  # the team's own levels: the case's escalation level is the customer's deadlines'
            events = chain(name, deadline, case.chains.get(name), case.escalate_to)[: deadline.fired]
            level = str(sum(1 for event in events if event.kind == Due.level))
        else:
            case.escalation_level += 1
            level = str(case.escalation_level)
        case.count("redress_escalations", deadline=name)
        done = []
        if step.notify:
            notices.tell_staff(Template.escalation, step.notify, deadline=name, level=level)
            done.append(f"notified {step.notify}")
        if step.page:
            notices.tell_staff(Template.escalation, "page", person=step.page, deadline=name, level=level)
            done.append(f"paged {step.page}")
        if step.pay:
            done.append(f"pays {step.pay.kind.value} {step.pay.amount} {step.pay.currency}")
        handed_over = False
        if step.reassign and step.reassign != case.queue:
            done.append(f"moved from queue {case.queue} to {step.reassign}")
            case.queue, handed_over = step.reassign, True
        raise_to = step.raise_severity if step.raise_severity and step.raise_severity.rank > case.tier.rank else None
        if raise_to:
            done.append(f"severity raised to {raise_to.value}")
        case.event(
            "escalated",
            "system",
            f"{name} level {level}: {', '.join(done) or 'nothing left to do'}",
            deadline=name,
            level=int(level),
            team=team,
        )
        case.publish()
        if handed_over and self._team_clock_moves():
            await self._ask_quietly(self._hand_over)
        if step.pay:
            pay = step.pay
            await self._ask_quietly(lambda: self.remedies.pay_on_breach(name, pay))
        if raise_to:
            await self._ask_quietly(
                lambda: self._change_severity(raise_to, "system", f"escalation level {level} of {name}")
            )

    async def _contacted(self) -> None:
        """The customer heard from us: a new next-update period starts now (when the tier has one)."""
        case = self.case
        if "next_update" not in case.deadlines or case.stage.is_final or case.resolution:
            return
        answer = await self.run_step(
            ComplaintActivities.compute_deadlines,
            DeadlineRequest(
                rule_version=case.rule_version,
                severity=case.tier,
                start=workflow.now(),
                names=["next_update"],
                category=case.category,
                queue=case.queue,
            ),
        )
        if "next_update" in answer.deadlines and not case.resolution:
            case.deadlines["next_update"] = Deadline(due=answer.deadlines["next_update"])
            case.deadline_starts["next_update"] = workflow.now()
            case.chains.update(answer.chains)
            case.publish()

    def _team_clock_moves(self) -> bool:
        """Whether a move to the case's (new) queue stops a team clock or starts one.

        Asked before any step is queued: a case whose rules give no queue a clock (every case
        begun before team clocks existed) takes no step and schedules nothing more on a move.
        """
        case = self.case
        running = any(is_team_clock(n) and d.met_at is None for n, d in case.deadlines.items())
        return running or bool(case.triage and case.queue in case.triage.team_clocks)

    async def _hand_over(self) -> None:
        """The case moved to another queue: the team clock of the one it left stops (handed on, counted as met),
        the new queue's starts now, if it has one.

        A team's clock runs once per case: handed back to a team whose clock already ran, the case starts
        none (two teams whose chains reassign to each other would otherwise pass it back and forth, a miss
        each time, for as long as it lives). Handed over while the case waits on the customer, the clock
        starts from the pause, which the customer's reply then shifts it by: it counts from the reply.
        """
        case = self.case
        if case.stage.is_final or case.resolution:
            return
        for name in [n for n, d in case.deadlines.items() if is_team_clock(n) and d.met_at is None]:
            case.meet(name)
            case.event("team_clock_handed_on", "system", f"{name}: the case went to queue {case.queue}", deadline=name)
        ran_before = TEAM_CLOCK + (case.queue or "") in case.deadlines
        if not (case.triage and case.queue in case.triage.team_clocks) or ran_before:
            case.publish()
            return
        answer = await self.run_step(
            ComplaintActivities.compute_deadlines,
            DeadlineRequest(
                rule_version=case.rule_version,
                severity=case.tier,
                start=case.paused_since or workflow.now(),
                names=[],
                queue=case.queue,
                team_clock=True,
            ),
        )
        for name, due in answer.deadlines.items():
            if is_team_clock(name) and name not in case.deadlines:
                case.deadlines[name] = Deadline(due=due)
                case.deadline_starts[name] = case.paused_since or workflow.now()
                case.chains[name] = answer.chains[name]
                case.event("team_clock", "rules", f"{name} due at {utc_minute(due)}", deadline=name)
        case.publish()

    async def _change_severity(self, severity: Severity, actor: str, reason: str) -> None:
        """Re-tier the case: open deadlines are recomputed from the rules and the watcher re-plans."""
        case = self.case
        case.refuse_unless_open()
        if severity == case.severity:
            raise refusal(f"the case is already {severity.value}")
        previous, case.severity = case.tier, severity
        open_names = await self._recompute_open_deadlines(dict(case.chains))
        case.event(
            "severity_changed",
            actor,
            f"{previous.value} -> {severity.value}: {reason}",
            deadlines={n: case.deadlines[n].due.isoformat() for n in open_names},
        )
        case.publish()

    async def _recompute_open_deadlines(self, chains: dict[str, list[PlannedStep]]) -> list[str]:
        """Due times of unmet deadlines from the case's rules, severity, category and queue; fired steps stay fired.

        Computed first, then applied at once with `chains` (the chains to build on): the deadline
        watcher plans again on the whole change, never on half of it.
        """
        case = self.case
        # a team clock runs from the handover, whatever the case's tier: it is not recomputed here
        open_names = [name for name, d in case.deadlines.items() if d.met_at is None and not is_team_clock(name)]
        escalate_to, dues = case.escalate_to, {}
        asks: list[str | None] = [*open_names] or [None]  # none open: once, for the escalation role alone
        for name in asks:
            answer = await self.run_step(
                ComplaintActivities.compute_deadlines,
                DeadlineRequest(
                    rule_version=case.rule_version,
                    severity=case.tier,
                    start=case.deadline_starts.get(name, case.received.received_at)
                    if name
                    else case.received.received_at,
                    names=[name] if name else [],
                    paused_seconds=case.paused_seconds,
                    category=case.category,
                    queue=case.queue,
                ),
            )
            escalate_to = answer.escalate_to
            chains.update(answer.chains)
            if name and name in answer.deadlines:
                dues[name] = answer.deadlines[name]
        case.escalate_to, case.chains = escalate_to, chains
        for name, due in dues.items():
            case.deadlines[name].due = due
        return open_names

    async def _retriage(self, actor: str, reason: str) -> None:
        """Decide the case again with the current rules: the case moves to that version, deadlines follow."""
        case = self.case
        case.refuse_unless_open()
        result = await self.run_step(ComplaintActivities.triage, TriageFacts.of(case.received))
        before = (case.rule_version, case.category, case.severity, case.queue)
        case.triage = result
        if result.crisis_key:
            case.crisis_keys.add(result.crisis_key)
        case.rule_version, case.category, case.queue = result.rule_version, result.category, result.queue
        case.severity = result.severity
        team_chains = {name: steps for name, steps in case.chains.items() if is_team_clock(name)}
        open_names = await self._recompute_open_deadlines(dict(result.chains) | team_chains)
        if result.queue != before[3] and self._team_clock_moves():
            await self._hand_over()
        case.event(
            "retriaged",
            actor,
            f"rules {before[0]} -> {result.rule_version}: {result.category} / {result.severity.value} / "
            f"queue {result.queue} ({reason})",
            previous={
                "rule_version": before[0],
                "category": before[1],
                "severity": before[2].value if before[2] else None,
                "queue": before[3],
            },
            rule_version=result.rule_version,
            fired=result.fired,
            deadlines={n: case.deadlines[n].due.isoformat() for n in open_names},
        )
        case.publish()

    # ------------------------------------------------------------ messages: working the case

    @workflow.update
    @takes(ResponseRecord)
    async def record_response(self, response: ResponseRecord) -> Status:
        case = self.case
        is_first = not any(event.kind == "response" for event in case.timeline)
        case.meet("first_response")
        case.team_answered()
        case.contacted_by_agent()
        case.assignee = case.assignee or response.agent
        if case.stage in STAGES_BEFORE_RESPONSE:
            case.set_stage(Stage.in_progress)
        sent = " sent to the customer" if response.message else " recorded"
        case.event("response", f"agent:{response.agent}", ("first response" if is_first else "response") + sent)
        if response.message:
            self.notices.tell_customer(Template.progress, message=response.message)
            await self._ask(self._contacted)
        return case.status()

    @record_response.validator
    @takes(ResponseRecord)
    def _check_response(self, response: ResponseRecord) -> None:
        case = self.case
        case.refuse_unless_open()
        if case.stage == Stage.received:
            raise refusal("the complaint is still being triaged; try again in a moment")
        if case.stage in (Stage.resolved, Stage.follow_up):
            raise refusal(f"the case is {case.stage.value}: it waits for the customer's survey answer")

    @workflow.update
    @takes(Resolution)
    def resolve(self, resolution: Resolution) -> Status:
        case = self.case
        case.resolution = resolution
        case.root_cause = resolution.root_cause or case.root_cause
        case.meet("resolution")
        case.meet("next_update")
        case.team_answered()
        case.event("resolved", f"agent:{resolution.agent}", resolution.summary, root_cause=resolution.root_cause)
        self.remedies.lapse_held("resolved")
        return case.status()

    @resolve.validator
    @takes(Resolution)
    def _check_resolve(self, resolution: Resolution) -> None:
        case = self.case
        case.refuse_unless_open()
        if case.resolution is not None or case.stage in (Stage.resolved, Stage.follow_up):
            raise refusal("the case is already resolved")
        if case.stage not in (Stage.in_progress, Stage.remedy_executed):
            raise refusal(f"the case is {case.stage.value}: record a response to the customer before resolving")
        if case.proposal_asked or case.pending_approval() or case.executing or case.to_execute:
            raise refusal("a remedy is still being checked, awaiting approval or being carried out")
        causes = case.root_causes()
        if causes and resolution.root_cause is None:
            raise refusal(f"name the root cause (root_cause): one of {', '.join(causes)}")
        if resolution.root_cause is not None and resolution.root_cause not in causes:
            listed = f"one of {', '.join(causes)}" if causes else "none: the case's rules list no root causes"
            raise refusal(f"root_cause: not in the rules' list ({listed})")  # the field, never the value

    @workflow.update
    @takes(Feedback)
    def customer_feedback(self, feedback: Feedback) -> Status:
        case = self.case
        case.feedback = feedback
        case.event(
            "feedback",
            "customer",
            f"CSAT {feedback.score}" + (f": {feedback.comment}" if feedback.comment else ""),
            score=feedback.score,
        )
        return case.status()

    @customer_feedback.validator
    @takes(Feedback)
    def _check_feedback(self, feedback: Feedback) -> None:
        case = self.case
        case.refuse_unless_open()
        if case.stage != Stage.follow_up or case.feedback is not None:
            raise refusal(f"the case is {case.stage.value}: feedback is taken after it is resolved")

    @workflow.update
    @takes(CustomerQuestion)
    async def await_customer(self, question: CustomerQuestion) -> Status:
        case = self.case
        case.paused_since = workflow.now()
        case.team_answered()
        case.contacted_by_agent()
        case.stage_before_pause = case.stage
        case.set_stage(Stage.pending_customer)
        case.event("paused", f"agent:{question.agent}", f"waiting on the customer: {question.question}")
        self.notices.tell_customer(Template.progress, message=question.question)
        await self._ask(self._contacted)
        return case.status()

    @await_customer.validator
    @takes(CustomerQuestion)
    def _check_await_customer(self, question: CustomerQuestion) -> None:
        case = self.case
        case.refuse_unless_open()
        if case.stage == Stage.pending_customer:
            raise refusal("the case already waits on the customer")
        if case.stage not in (Stage.in_progress, Stage.remedy_executed):
            raise refusal(f"the case is {case.stage.value}: only a case being worked on can wait on the customer")

    @workflow.update
    @takes(CustomerReply)
    async def customer_replied(self, reply: CustomerReply) -> Status:
        await self._ask(lambda: self._resume(reply))
        return self.case.status()

    async def _resume(self, reply: CustomerReply) -> None:
        case = self.case
        if case.stage != Stage.pending_customer or case.paused_since is None:
            raise refusal(f"the case is {case.stage.value}: it is not waiting on the customer")
        paused_from, paused_to = case.paused_since, workflow.now()
        open_dues = {n: d.due for n, d in case.deadlines.items() if d.met_at is None}
        shifted = await self.run_step(
            ComplaintActivities.shift_for_pause,
            PauseShift(
                rule_version=case.rule_version,
                severity=case.tier,
                deadlines=open_dues,
                paused_from=paused_from,
                paused_to=paused_to,
            ),
        )
        for name, due in shifted.deadlines.items():
            case.deadlines[name].due = due
        case.paused_seconds += shifted.paused_seconds
        case.paused_since = None
        case.set_stage(case.stage_before_pause or Stage.in_progress)
        case.event(
            "resumed",
            "customer",
            f"customer replied after {shifted.paused_seconds:.0f}s not counted: {reply.message}",
            paused_seconds=shifted.paused_seconds,
            deadlines={n: d.isoformat() for n, d in shifted.deadlines.items()},
        )
        case.publish()
        await self.remedies.release()  # evidence that came while they were asked for it releases a held remedy now

    @customer_replied.validator
    @takes(CustomerReply)
    def _check_customer_replied(self, reply: CustomerReply) -> None:
        case = self.case
        case.refuse_unless_open()
        if case.stage != Stage.pending_customer:
            raise refusal(f"the case is {case.stage.value}: it is not waiting on the customer")

    @workflow.update
    @takes(Retriage)
    async def retriage(self, request: Retriage) -> Status:
        await self._ask(lambda: self._retriage(f"supervisor:{request.by}", request.reason))
        return self.case.status()

    @retriage.validator
    @takes(Retriage)
    def _check_retriage(self, request: Retriage) -> None:
        self.case.refuse_unless_open()
        if self.case.severity is None:
            raise refusal("the complaint is still being triaged; try again in a moment")

    @workflow.update
    @takes(SeverityChange)
    async def change_severity(self, change: SeverityChange) -> Status:
        await self._ask(lambda: self._change_severity(change.severity, f"supervisor:{change.by}", change.reason))
        return self.case.status()

    @change_severity.validator
    @takes(SeverityChange)
    def _check_severity_change(self, change: SeverityChange) -> None:
        case = self.case
        case.refuse_unless_open()
        if case.severity is None:
            raise refusal("the complaint is still being triaged; try again in a moment")
        if change.severity == case.severity:
            raise refusal(f"the case is already {change.severity.value}")

    @workflow.update
    @takes(Withdrawal)
    def withdraw(self, withdrawal: Withdrawal) -> Status:
        case = self.case
        case.withdrawal = withdrawal
        pending = case.pending_approval()
        if pending:
            pending.status = ProposalStatus.rejected
            pending.decided_by = "withdrawn"
        case.event("withdrawn", withdrawal.by, withdrawal.reason or "withdrawn")
        self.remedies.lapse_held("withdrawn")
        # The main loop ends the case next (after a remedy being paid, if one is); the caller is told the
        # decided stage rather than the one it is leaving.
        return case.status().model_copy(update={"stage": Stage.withdrawn})

    @withdraw.validator
    @takes(Withdrawal)
    def _check_withdraw(self, withdrawal: Withdrawal) -> None:
        self.case.refuse_unless_open()
        if self.case.withdrawal is not None:
            raise refusal("the complaint is already being withdrawn")

    def _signal_refused(self, name: str, reason: str) -> None:
        """A signal cannot be refused to its sender: the timeline says what was ignored, and why."""
        kind = "decision_refused" if name in DECISIONS else "signal_refused"
        self.case.event(kind, "system", f"{name} signal ignored: {reason}")

    # ------------------------------------------------------------ messages: evidence

    @workflow.update
    @takes(ContactCorrection)
    async def correct_contact(self, correction: ContactCorrection) -> Status:
        """New contact details for an open case; the old ones become unreadable.

        The case's key moves on a generation (a step); the details are changed, in queued notices too;
        then, once nothing is in flight, the case continues as a new run whose history holds only the new
        ones, and that run shreds the earlier key: every payload sealed with it, in the old run's history,
        archives and backups, is unreadable from then on. The timeline names the fields, never the values.
        """
        case = self.case
        fields = correction.fields()
        # the new details first (queued notices too): whatever is sealed from now on, before the rekey or after,
        # holds them, never the old ones
        customer = case.received.customer.model_copy(update={field: getattr(correction, field) for field in fields})
        case.complaint = case.received.model_copy(update={"customer": customer})
        self.notices.readdress(customer)
        self._correcting = True
        try:
            generation = await self.run_step(
                ComplaintActivities.rekey_case,
                KeyChange(workflow_id=workflow.info().workflow_id, generation=case.key_generation),
            )
        finally:
            self._correcting = False
        case.key_generation = generation
        case.event(
            "contact_corrected",
            correction.by if correction.by == "customer" else f"agent:{correction.by}",
            f"contact details corrected ({', '.join(fields)}); the earlier ones will be unreadable",
            fields=fields,
        )
        self._handing_over = True
        return case.status()

    @correct_contact.validator
    @takes(ContactCorrection)
    def _check_correction(self, correction: ContactCorrection) -> None:
        case = self.case
        case.refuse_unless_open()
        if not self._resumed and case.stage in (Stage.received, Stage.triaged):
            raise refusal("the case is still being taken in; correct its contact details once it is acknowledged")
        if case.resolution or case.stage in (Stage.resolved, Stage.follow_up) or case.withdrawal:
            raise refusal("the case is resolved or withdrawn: contact details are corrected on open cases")
        if self._correcting or self._handing_over:
            raise refusal("a correction of this case's contact details is under way; send this one after it")
        if self.notices.sending or case.executing:
            # what is on its way holds the old details: sealed after the rekey, it could never be shredded
            raise refusal("a message to the customer or a payout is on its way; correct the details in a moment")
        if case.key_generation > MAX_CORRECTIONS:
            raise refusal(f"this case's contact details were corrected {MAX_CORRECTIONS} times, the most it takes")
        current = case.received.customer
        if all(getattr(current, field) == getattr(correction, field) for field in correction.fields()):
            raise refusal("these are the case's contact details already")

    @workflow.update
    @takes(Evidence)
    async def add_evidence(self, evidence: Evidence) -> Status:
        """A reference and a digest on the case; a proposal held for evidence of this kind goes on (a step)."""
        case = self.case
        case.add_evidence(evidence)
        held = case.held_proposal()
        # while the case waits on the customer nothing moves on (the clocks are paused): their reply releases it
        if held is not None and evidence.kind in held.evidence_needed and case.stage != Stage.pending_customer:
            await self._ask(self.remedies.release)
        return case.status()

    @add_evidence.validator
    @takes(Evidence)
    def _check_evidence(self, evidence: Evidence) -> None:
        case = self.case
        case.refuse_unless_open()
        if len(case.evidence) >= MAX_EVIDENCE:
            raise refusal(f"the case holds {MAX_EVIDENCE} pieces of evidence, the most it takes")
        same = next((e for e in case.evidence if e.sha256 == evidence.sha256), None)
        if same is not None:
            raise refusal(f"this file is already on the case as {same.evidence_id} (same sha256)")

    # ------------------------------------------------------------ messages: remedies and approvals

    @workflow.update
    @takes(RemedyProposal)
    async def propose_remedy(self, proposal: RemedyProposal) -> ProposalAnswer:
        self.case.proposal_asked = True
        try:
            record = await self._ask(lambda: self.remedies.propose(proposal))
        finally:
            self.case.proposal_asked = False
        return ProposalAnswer(proposal_id=record.proposal_id, status=record.status, required_role=record.required_role)

    @propose_remedy.validator
    @takes(RemedyProposal)
    def _check_proposal(self, proposal: RemedyProposal) -> None:
        if self.case.proposal_asked:
            raise refusal("another proposal is being checked; try again in a moment")
        self.remedies.proposal_admissible(proposal)

    @workflow.update
    @takes(ApprovalDecision)
    async def approve_remedy(self, decision: ApprovalDecision) -> ProposalRecord:
        return await self._ask(lambda: self.remedies.decide(decision, "approve"))

    @approve_remedy.validator
    @takes(ApprovalDecision)
    def _check_approval(self, decision: ApprovalDecision) -> None:
        self.remedies.decision_admissible(decision, "approve")

    @workflow.update
    @takes(ApprovalDecision)
    async def reject_remedy(self, decision: ApprovalDecision) -> ProposalRecord:
        return await self._ask(lambda: self.remedies.decide(decision, "reject"))

    @reject_remedy.validator
    @takes(ApprovalDecision)
    def _check_rejection(self, decision: ApprovalDecision) -> None:
        self.remedies.decision_admissible(decision, "reject")

    # The same decisions as signals, for clients that cannot send updates: no answer goes back,
    # so a refused one is written to the timeline (and changes nothing else).
    @workflow.signal(name="approve_remedy")
    @receives(ApprovalDecision, "approve_remedy")
    async def approve_remedy_signal(self, decision: ApprovalDecision) -> None:
        self.remedies.decision_admissible(decision, "approve")
        await self._ask(lambda: self.remedies.decide(decision, "approve"))

    @workflow.signal(name="reject_remedy")
    @receives(ApprovalDecision, "reject_remedy")
    async def reject_remedy_signal(self, decision: ApprovalDecision) -> None:
        self.remedies.decision_admissible(decision, "reject")
        await self._ask(lambda: self.remedies.decide(decision, "reject"))

    @workflow.signal
    @receives(DataExported)
    def data_exported(self, exported: DataExported) -> None:
        """A subject-access export read this case out: who did it is kept in its timeline."""
        self.case.event(
            "data_exported",
            f"staff:{exported.by}",
            f"the customer's data was exported by {exported.by} (subject-access request, {exported.cases} case(s))",
        )

    # ------------------------------------------------------------ crises (from a CrisisWatch workflow)

    @workflow.signal
    @receives(CrisisLink)
    async def crisis_declared(self, link: CrisisLink) -> None:
        """This case is one of many about the same thing: raise it (its deadlines follow)."""
        await self._ask(lambda: self._link_crisis(link))

    async def _link_crisis(self, link: CrisisLink) -> None:
        case = self.case
        if link.crisis_id in case.crises or case.stage.is_final:
            return
        case.crises.append(link.crisis_id)
        case.event("crisis_linked", f"crisis:{link.crisis_id}", link.reason, crisis=link.crisis_id)
        if link.raise_to.rank > case.tier.rank and not case.withdrawal:
            await self._change_severity(link.raise_to, f"crisis:{link.crisis_id}", link.reason)

    @workflow.signal
    @receives(CommonRemedy)
    async def crisis_remedy(self, remedy: CommonRemedy) -> None:
        """The crisis' common remedy, signed once for every linked case: verified here, carried out here, once."""
        await self._ask(lambda: self.remedies.take_common_remedy(remedy))

    # ------------------------------------------------------------ queries

    @workflow.query
    def status(self) -> Status:
        return self.case.status()

    @workflow.query
    def timeline(self) -> list[TimelineEvent]:
        return self.case.timeline

    @workflow.query
    def refused_input(self) -> Any:
        """What a complaint refused as invalid sent, as it came (None for an accepted one, or one that could not be
        opened). Personal data: encrypted like every payload."""
        return self._refused_input

    @workflow.query
    def evidence(self) -> list[EvidenceRecord]:
        """The evidence on the case with where it is kept and its notes (free text: encrypted like every payload)."""
        return self.case.evidence

    @workflow.query
    def complaint(self) -> ComplaintInput | None:
        """What the customer sent (None: the input was refused). Personal data: encrypted like every payload."""
        return self.case.complaint

    # ------------------------------------------------------------ visibility

    def _settled(self) -> bool:
        """Nothing this workflow task has started is still running, and nothing queued is about to start.

        A step that has fallen back to an ordinary activity (a peer is down) does not count:
        the search attributes must not wait for a peer. Only the number of events depends
        on this, never what the case does.
        """
        return self.run_step.local_running == 0 and not self.notices.waiting and not self.case.to_execute

    async def _publish_when_settled(self) -> None:
        """One upsert per burst of changes (usually one per workflow task) instead of one per change."""
        while True:
            await workflow.wait_condition(lambda: self.case.attributes_changed and self._settled())
            await asyncio.sleep(0)  # no timer: lets the coroutines woken with this one act first (they may change more)
            if self._settled():
                self._send_search_attributes()

    def _send_search_attributes(self) -> None:
        """Send the search attributes that changed since last sent (none: no event)."""
        case = self.case
        case.attributes_changed = False
        wanted: dict[str, Any] = {
            sa.COMPLAINT_STATUS.name: case.stage.value,
            sa.ESCALATION_LEVEL.name: case.escalation_level,
        }
        if case.complaint:
            wanted[sa.CHANNEL.name] = case.complaint.channel.value
            wanted[sa.RECEIVED_DAY.name] = sa.received_day(case.complaint.received_at)
            if case.complaint.order and case.complaint.order.product_sku:
                wanted[sa.PRODUCT.name] = case.complaint.order.product_sku
        customer_ref = case.triage.customer_ref if case.triage else case.customer_ref
        if customer_ref:
            wanted[sa.CUSTOMER_ID.name] = customer_ref
        if case.severity:
            wanted.update(
                {sa.SEVERITY.name: case.severity.value, sa.CATEGORY.name: case.category, sa.QUEUE.name: case.queue}
            )
        if any(d.breached_at for name, d in case.deadlines.items() if not is_team_clock(name)):
            wanted[sa.BREACHED.name] = True
        if case.team_breaches:
            wanted[sa.TEAM_BREACHED.name] = True
        team_due = [d.due for n, d in case.deadlines.items() if is_team_clock(n) and d.met_at is None]
        if team_due or sa.TEAM_DUE.name in self._sent_attributes:  # never sent for a case no team clock ran on
            wanted[sa.TEAM_DUE.name] = int(min(team_due).timestamp()) if team_due and not case.stage.is_final else None
        for name, key in sa.DUE_KEYS.items():
            deadline = case.deadlines.get(name)
            open_ = deadline and deadline.met_at is None and not case.stage.is_final
            wanted[key.name] = deadline.due if deadline and open_ else None
        keys = {key.name: key for key in sa.ALL}
        updates = []
        for name, value in wanted.items():
            if self._sent_attributes.get(name) != value:
                self._sent_attributes[name] = value
                key = keys[name]
                updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
