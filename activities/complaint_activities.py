"""The activities of Redress's workflows, as methods sharing one HTTP client, one rule store and one client.

The Temporal client is for facts across cases: the customer's record (update-
and signal-with-start). Without one (rule-only uses), every case stands alone.

Logs name the complaint and the template, never the customer's contact details.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import structlog
from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities import trends
from activities.io import (
    Authority,
    AuthorityCheck,
    CaseEnd,
    CustomerNotice,
    DeadlineAnswer,
    DeadlineRequest,
    Delivery,
    Intake,
    IntakeResult,
    KeyChange,
    PauseShift,
    ProposalCheck,
    ProposalVerdict,
    RemedyOrder,
    RemedyReceipt,
    ShiftedDeadlines,
    StaffNotice,
    TriageFacts,
    TriageResult,
    notice_params,
)
from activities.outbox import Outbox
from activities.peers import post_idempotent
from activities.rules import approvals, engine
from activities.rules.loader import RuleSet
from activities.rules.schema import Repeat
from activities.rules.store import RuleStore
from activities.settings import Settings
from activities.templates import render
from redress import codec
from redress.contract import (
    CRISIS_WORKFLOW_TYPE,
    CUSTOMER_WORKFLOW_TYPE,
    DESK_WORKFLOW_TYPE,
    MONEY_KINDS,
    ComplaintInput,
    Customer,
    crisis_workflow_id,
    customer_workflow_id,
    desk_workflow_id,
    records_queue,
    workflow_id_for,
)
from redress.crises import COMPLAINT_REPORTED, ComplaintReported, CrisisRules, CrisisState
from redress.customers import (
    COMPLAINT_ENDED,
    COMPLAINT_OPENED,
    FLAG_CUSTOMER,
    REMEDY_PAID,
    CareOrder,
    ComplaintOpened,
    CustomerFacts,
    CustomerState,
    FlagRequest,
    Payout,
)
from redress.desks import ROUTE, DeskState, Routed, RouteRequest
from redress.trends import TrendReport

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=BaseModel)
CUSTOMER_RECORD_PATIENCE = timedelta(seconds=10)  # for each cross-case call made during triage
HANDOVER_ATTEMPTS = 4  # update-with-start tries while a record or desk continues as new


def _records_queue() -> str:
    """The long-lived workflows' queue beside the one this activity runs on (redress/contract.py)."""
    return records_queue(activity.info().task_queue)


class ComplaintActivities:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, rules: RuleStore, temporal: Client | None = None):
        self.settings = settings
        self.http = http
        self.rules = rules
        self.temporal = temporal
        self.outbox = Outbox(settings.outbox_path)

    @activity.defn
    async def triage(self, facts: TriageFacts) -> TriageResult:
        """The whole rule set in one activity: one history event per triage, not one per rule."""
        rule_set = self.rules.latest()
        facts, known = await self._with_customer_facts(facts, rule_set.document.repeat.window)
        result = engine.triage(rule_set, facts, explain=False)
        if not known:  # the rules saw this complaint alone; whether it repeats another is not known
            result.complaints_90d = None
        await self._flag_on_record(rule_set.document.repeat, facts, result)
        await self._report_to_crisis_watch(rule_set, facts, result)
        result = await self._route_to_agent(rule_set, facts, result)
        result.customer_ref = self._customer_ref(facts.customer_id)
        log.info(
            "triaged",
            complaint_id=facts.complaint_id,
            rule_version=result.rule_version,
            category=result.category,
            severity=result.severity.value,
            queue=result.queue,
            fired=result.fired,
        )
        return result

    @property
    def client(self) -> Client:
        """The Temporal client, for the steps that reach other workflows (a worker always passes one)."""
        if self.temporal is None:
            raise RuntimeError("this step reaches other workflows and needs the worker's Temporal client")
        return self.temporal

    def _customer_ref(self, customer_id: str) -> str | None:
        """The keyed pseudonym of a customer id (redress/codec.py): what visibility and workflow ids may show."""
        if self.temporal is None:
            return None
        return codec.ring_of(self.client.data_converter).pseudonym(customer_id)

    @activity.defn
    async def triage_and_acknowledge(self, intake: Intake) -> IntakeResult:
        """Triage, then the acknowledgement it lets us write: every case's first step, one history event."""
        result = await self.triage(intake.facts)
        notice = intake.acknowledgement.model_copy(
            update={
                "language": result.reply_language or intake.acknowledgement.language,
                "rule_version": result.rule_version,
                "params": notice_params(intake.facts.complaint_id, result.severity, result.queue, result.deadlines),
            }
        )
        return IntakeResult(triage=result, acknowledgement=await self._tell_along(notice))

    async def _tell_along(self, notice: CustomerNotice) -> Delivery:
        """Send the notice that follows a step within the step's own activity, once.

        A notifier that refuses it for good is reported as the queue would report it; one
        that does not answer leaves the notice to the case's queue (`deferred`), so the
        step, done already, is neither held up nor repeated for a message.
        """
        try:
            await self.notify_customer(notice)
        except ApplicationError as error:
            if error.non_retryable:
                return Delivery(outcome="refused", reason=error.message)
            reason = error.message
        except Exception as error:
            reason = str(error) or type(error).__name__
        else:
            return Delivery(outcome="sent")
        log.info(
            "notice left to the case's queue", complaint_id=notice.complaint_id, template=notice.template, reason=reason
        )
        return Delivery(outcome="deferred", reason=reason)

    async def _with_customer_facts(self, facts: TriageFacts, window: timedelta) -> tuple[TriageFacts, bool]:
        """Record the complaint on the customer's record and learn their other complaints (one round trip); and
        whether the record answered."""
        if self.temporal is None:
            return facts, False
        opened = ComplaintOpened(
            complaint_id=facts.complaint_id,
            order_id=facts.order.id if facts.order else None,
            received_at=facts.received_at,
            window_seconds=window.total_seconds(),
        )
        try:
            ref = codec.ring_of(self.client.data_converter).pseudonym(facts.customer_id)
            known = await self._update_with_start(
                CUSTOMER_WORKFLOW_TYPE,
                CustomerState(customer_id=ref),
                customer_workflow_id(ref),
                COMPLAINT_OPENED,
                opened,
                CustomerFacts,
                f"opened:{facts.complaint_id}",
            )
        except (TimeoutError, RPCError, WorkflowUpdateFailedError) as error:
            # Triage never waits on a nicety: the rules see this complaint alone, and the log says why.
            log.warning(
                "customer record unavailable; triaged without repeat facts",
                complaint_id=facts.complaint_id,
                error=str(error) or type(error).__name__,
            )
            return facts, False
        return facts.model_copy(
            update={
                "complaints_90d": known.complaints_in_window,
                "open_on_order": known.open_on_order,
                "payouts_90d": known.payouts_in_window,
                "paid_90d": known.paid_in_window,
                "claims_without_evidence": known.claims_without_evidence,
                "claimant_flag": known.flag,
                "flag_cleared_until": known.flag_cleared_until,
            }
        ), True

    async def _flag_on_record(self, repeat: Repeat, facts: TriageFacts, result: TriageResult) -> None:
        """A flag the rules raised at this triage goes on the customer's record, so their next cases carry it.

        Best effort: the case carries its flag whatever happens here; the record may refuse it (a supervisor's
        clearance runs) or be away, and the log says so without the reason's words.
        """
        flag = result.claimant_flag
        if flag is None or facts.claimant_flag is not None or self.temporal is None:
            return
        ref = self._customer_ref(facts.customer_id) or ""
        try:
            record = await self._update_with_start(
                CUSTOMER_WORKFLOW_TYPE,
                CustomerState(customer_id=ref),
                customer_workflow_id(ref),
                FLAG_CUSTOMER,
                FlagRequest(
                    reason=flag.reason,
                    by=flag.by,
                    complaint_id=facts.complaint_id,
                    keep_seconds=repeat.window.total_seconds(),
                    cleared_for_seconds=repeat.cleared_for.total_seconds(),
                ),
                CustomerState,
                f"flag:{facts.complaint_id}",
            )
        except (TimeoutError, RPCError, WorkflowUpdateFailedError) as error:
            log.warning(
                "customer record unavailable; the flag stays on this case only",
                complaint_id=facts.complaint_id,
                error=type(error).__name__,
            )
            return
        if record.flag is None:  # a supervisor cleared them meanwhile: their review stands
            result.claimant_flag = None

    async def _report_to_crisis_watch(self, rule_set: RuleSet, facts: TriageFacts, result: TriageResult) -> None:
        """Count this complaint toward a crisis about the same thing (signal-with-start; the watch dedups retries).

        The key is also the case's own: the only crisis whose common remedy it will take.
        """
        crisis = rule_set.document.crisis
        if crisis is None:
            return
        value = {
            "sku": facts.order.product_sku if facts.order else None,
            "category": result.category,
            "queue": result.queue,
        }[crisis.key]
        if not value:
            return
        key = f"{crisis.key}:{value}"
        result.crisis_key = key
        if self.temporal is None:
            return
        reported = ComplaintReported(
            complaint_id=facts.complaint_id,
            at=facts.received_at,
            rules=CrisisRules(
                window_seconds=crisis.window.total_seconds(),
                threshold=crisis.threshold,
                notify=crisis.notify,
                raise_to=crisis.raise_to,
                rule_version=rule_set.version,
            ),
        )
        try:
            await asyncio.wait_for(
                self.client.start_workflow(
                    CRISIS_WORKFLOW_TYPE,
                    CrisisState(key=key),
                    id=crisis_workflow_id(key),
                    task_queue=_records_queue(),
                    start_signal=COMPLAINT_REPORTED,
                    start_signal_args=[reported],
                ),
                timeout=CUSTOMER_RECORD_PATIENCE.total_seconds(),
            )
        except (TimeoutError, RPCError) as error:
            log.warning(
                "crisis watch unavailable; this complaint was not counted",
                complaint_id=facts.complaint_id,
                crisis=key,
                error=str(error) or type(error).__name__,
            )

    async def _update_with_start(
        self,
        workflow_type: str,
        state: BaseModel,
        workflow_id: str,
        update: str,
        arg: BaseModel,
        result_type: type[R],
        update_id: str,
    ) -> R:
        """Update a long-lived workflow (starting it if need be) within triage's patience for cross-case calls.

        Asked again while the workflow hands over to its next run: an update that reaches a
        run in the instant it continues as new is aborted by the server (WorkflowNotReady,
        "workflow is closing"), and the next attempt lands on the new run.
        """

        async def ask() -> Any:
            for attempt in range(1, HANDOVER_ATTEMPTS + 1):
                start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(  # used once each
                    workflow_type,
                    state,
                    id=workflow_id,
                    task_queue=_records_queue(),
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                )
                try:
                    return await self.client.execute_update_with_start_workflow(
                        update, arg, start_workflow_operation=start, id=update_id, result_type=result_type
                    )
                except RPCError as error:
                    text = error.message.lower()
                    if attempt == HANDOVER_ATTEMPTS or not ("workflow task failure" in text or "closing" in text):
                        raise
                await asyncio.sleep(0.2 * attempt)

        return await asyncio.wait_for(ask(), timeout=CUSTOMER_RECORD_PATIENCE.total_seconds())

    async def _route_to_agent(self, rule_set: RuleSet, facts: TriageFacts, result: TriageResult) -> TriageResult:
        """Ask the queue's desk who takes this case (only queues with a roster in the rules)."""
        load = rule_set.document.agent_load
        agents = load.agents.get(result.queue) if load else None
        if self.temporal is None or load is None or not agents:
            return result
        anger = (result.sentiment or {}).get("anger", 0.0)
        request = RouteRequest(
            complaint_id=facts.complaint_id,
            intense=anger >= load.intense_anger,
            agents=agents,
            break_after=load.break_after,
            break_seconds=load.break_length.total_seconds(),
            rule_version=rule_set.version,
        )
        try:
            routed = await self._update_with_start(
                DESK_WORKFLOW_TYPE,
                DeskState(queue=result.queue),
                desk_workflow_id(result.queue),
                ROUTE,
                request,
                Routed,
                f"route:{facts.complaint_id}",
            )
        except (TimeoutError, RPCError, WorkflowUpdateFailedError) as error:
            log.warning(
                "agent desk unavailable; the case is left for the queue",
                complaint_id=facts.complaint_id,
                queue=result.queue,
                error=str(error) or type(error).__name__,
            )
            return result
        note = (
            f"assigned to {routed.agent} by the {result.queue} desk"
            + (f" (intense case {routed.streak} in a row)" if request.intense and routed.streak else "")
            + ("; break prompt sent" if routed.break_prompted else "")
        )
        return result.model_copy(update={"assignee": routed.agent, "assignment": note})

    @activity.defn
    async def record_case_end(self, end: CaseEnd) -> Delivery | None:
        """Tell the customer's record the case ended (signal-with-start), then the customer (end.then_tell).

        A closed case may start a churn watch. The record is told first: a closing notice
        that cannot be delivered must not cost the record its end.
        """
        if self.temporal is not None:
            await self._tell_record(end)
        return await self._tell_along(end.then_tell) if end.then_tell else None

    async def _tell_record(self, end: CaseEnd) -> None:
        rule_set = self.rules.get(end.ended.rule_version) if end.ended.rule_version else self.rules.latest()
        churn = rule_set.document.churn
        profile = end.metadata.get(churn.profile_field) if churn else None
        ended = end.ended.model_copy(
            update={
                # the record keeps no contact details and no customer id, only the pseudonym (it is sealed with the
                # deployment key, which an erasure leaves); the care package looks the customer up in the case itself
                "customer": Customer(
                    id=self._customer_ref(end.ended.customer.id), language=end.ended.customer.language
                ),
                "rule_version": rule_set.version,
                "profile": str(profile) if profile is not None else None,
                "churn_window_seconds": churn.window.total_seconds() if churn else None,
            }
        )
        await self.client.start_workflow(
            CUSTOMER_WORKFLOW_TYPE,
            CustomerState(customer_id=ended.customer.id),
            id=customer_workflow_id(ended.customer.id),
            task_queue=_records_queue(),
            start_signal=COMPLAINT_ENDED,
            start_signal_args=[ended],
        )

    @activity.defn
    async def send_care_package(self, order: CareOrder) -> str:
        """The rules' care package for the customer's profile: a message, and a remedy if the package has one."""
        ended = order.ended
        rule_set = self.rules.get(ended.rule_version) if ended.rule_version else self.rules.latest()
        churn = rule_set.document.churn
        package = churn and (churn.packages.get(ended.profile or "default") or churn.packages.get("default"))
        if not package:
            log.info("no care package for this profile", complaint_id=ended.complaint_id, profile=ended.profile)
            return "none"
        # the record keeps no contact details nor the customer's id (they would outlive an erasure there):
        # both come from the case itself, which an erasure has made unreadable
        customer = await self._contact_from_case(ended.complaint_id)
        if customer is None:
            log.info("no care package: the customer's personal data was erased", complaint_id=ended.complaint_id)
            return "erased"
        params = {"complaint_id": ended.complaint_id}
        if package.kind:
            await self.execute_remedy(
                RemedyOrder(
                    complaint_id=ended.complaint_id,
                    proposal_id="care",
                    kind=package.kind,
                    amount=package.amount,
                    currency=package.currency,
                    customer_id=customer.id,
                )
            )
            params.update(remedy=package.kind.value, amount=str(package.amount), currency=package.currency)
        await self.notify_customer(
            CustomerNotice(
                complaint_id=ended.complaint_id,
                key=f"care:{ended.complaint_id}",
                template=package.template,
                language=ended.language,
                customer=customer,
                channel=ended.channel,
                rule_version=rule_set.version,
                params=params,
            )
        )
        log.info(
            "care package sent",
            complaint_id=ended.complaint_id,
            template=package.template,
            remedy=package.kind.value if package.kind else None,
        )
        return package.template

    async def _contact_from_case(self, complaint_id: str) -> Customer | None:
        """The customer as the case received them (its first event), or None once erased (redress/codec.py)."""
        handle = self.client.get_workflow_handle(workflow_id_for(complaint_id))
        async for event in handle.fetch_history_events():
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            try:
                [raw] = await self.client.data_converter.decode(payloads, [dict])
            except codec.PersonalDataErased:
                return None
            if isinstance(raw, dict) and raw.get("handover"):  # a case continued after a contact correction
                raw = (raw.get("case") or {}).get("complaint")
            return ComplaintInput.model_validate(raw).customer
        return None

    @activity.defn
    async def compute_deadlines(self, request: DeadlineRequest) -> DeadlineAnswer:
        rule_set = self.rules.get(request.rule_version)
        deadlines = engine.deadlines_for(
            rule_set,
            request.severity,
            request.start,
            request.names,
            timedelta(seconds=request.paused_seconds),
            request.category,
            request.queue,
        )
        chains = engine.chains_for(rule_set, request.severity)
        if request.team_clock and request.queue:  # the case was handed to this queue at `start`
            team_due, team_chain = engine.team_clock(rule_set, request.severity, request.queue, request.start)
            deadlines, chains = deadlines | team_due, chains | team_chain
        return DeadlineAnswer(
            rule_version=rule_set.version,
            deadlines=deadlines,
            escalate_to=rule_set.document.tiers[request.severity].escalate_to,
            chains=chains,
        )

    @activity.defn
    async def shift_for_pause(self, shift: PauseShift) -> ShiftedDeadlines:
        return engine.shift_for_pause(self.rules.get(shift.rule_version), shift)

    @activity.defn
    async def check_proposal(self, check: ProposalCheck) -> ProposalVerdict:
        """Who must approve a remedy: the case's pinned limits, the people of the live directory."""
        verdict = approvals.check_proposal(self.rules.get(check.rule_version), check, self.rules.latest(fresh=True))
        if verdict.proposer is not None:
            verdict.proposer.unavailable = self._directory_unreadable()
        log.info(
            "proposal checked",
            complaint_id=check.complaint_id,
            needs_approval=verdict.needs_approval,
            required_role=verdict.required_role,
            allowed=verdict.allowed,
        )
        return verdict

    @activity.defn
    async def authority(self, check: AuthorityCheck) -> Authority:
        """A signer as the live directory knows them now (key, role, stand-ins), against the case's pinned limits.

        Read fresh each time (no hot-reload interval): a key revoked a second ago must not decide.
        """
        found = approvals.authority_of(self.rules.get(check.rule_version), self.rules.latest(fresh=True), check)
        found.unavailable = self._directory_unreadable()
        log.info(
            "authority checked",
            complaint_id=check.complaint_id,
            has_key=found.public_key is not None,
            role=found.role,
            covers=found.covers,
            at_level=found.at_level,
        )
        return found

    def _directory_unreadable(self) -> str | None:
        """Why no signature may be checked now: the rules folder does not load (decisions fail closed).

        The last good version goes on deciding deadlines and routing; but a revocation or a
        removed key written into a folder that does not load would otherwise be ignored.
        """
        if not self.rules.refused:
            return None
        first = self.rules.refused[0]
        return (
            f"the rules folder does not load ({first.file}:{first.line}:{first.column}: {first.message}), so "
            "the approver directory cannot be trusted: no decision is taken until an admin fixes it"
        )

    @activity.defn
    async def customer_ref(self, customer_id: str) -> str | None:
        """A customer id's pseudonym, for a case refused as invalid (erasure finds its cases by it)."""
        return self._customer_ref(customer_id)

    @activity.defn
    async def notify_customer(self, notice: CustomerNotice) -> str:
        text, language = render(self.rules.get(notice.rule_version), notice.template, notice.language, notice.params)
        payload = {
            "audience": "customer",
            "complaint_id": notice.complaint_id,
            "template": notice.template,
            "language": language,
            "channel": notice.channel.value,
            "to": notice.customer.model_dump(include={"id", "name", "email", "phone"}, exclude_none=True),
            "text": text,
        }
        via = await self._deliver(notice.key, payload, self.settings.notify_url)
        log.info(
            "customer notified", complaint_id=notice.complaint_id, template=notice.template, language=language, via=via
        )
        return via

    @activity.defn
    async def notify_staff(self, notice: StaffNotice) -> str:
        text, _ = render(self.rules.get(notice.rule_version), notice.template, "en", notice.params)
        payload = {
            "audience": "staff",
            "complaint_id": notice.complaint_id,
            "template": notice.template,
            "role": notice.role,
            "person": notice.person,
            "text": text,
        }
        via = await self._deliver(notice.key, payload, self.settings.notify_url)
        log.info(
            "staff notified", complaint_id=notice.complaint_id, template=notice.template, role=notice.role, via=via
        )
        return via

    @activity.defn
    async def execute_remedy(self, order: RemedyOrder) -> RemedyReceipt:
        # the payment peer gets no contact details
        payload = order.model_dump(mode="json", exclude={"then_tell", "with_evidence"})
        if self.settings.payment_url:
            body = await post_idempotent(self.http, self.settings.payment_url, order.idempotency_key, payload)
            transaction_id = str(body.get("transaction_id") or "")
            if not transaction_id:
                raise RuntimeError(f"{self.settings.payment_url} answered without a transaction_id; will retry")
            via = "http"
        else:
            transaction_id = "outbox-" + hashlib.sha256(order.idempotency_key.encode()).hexdigest()[:16]
            await self.outbox.put(
                order.idempotency_key, {"audience": "payment", **payload, "transaction_id": transaction_id}
            )
            via = "outbox"
        log.info(
            "remedy executed",
            complaint_id=order.complaint_id,
            proposal_id=order.proposal_id,
            kind=order.kind.value,
            amount=str(order.amount),
            currency=order.currency,
            via=via,
            transaction_id=transaction_id,
        )
        await self._count_payout(order)
        told = await self._tell_along(order.then_tell) if order.then_tell else None
        return RemedyReceipt(transaction_id=transaction_id, via=via, told=told)

    async def _count_payout(self, order: RemedyOrder) -> None:
        """Money paid goes on the customer's record (signal-with-start; the record counts each proposal once).

        Never holds up the payment it follows: a record that cannot be told misses one payout, and the
        log says so.
        """
        if self.temporal is None or order.kind not in MONEY_KINDS or order.amount <= 0:
            return
        ref = self._customer_ref(order.customer_id) or ""
        payout = Payout(
            complaint_id=order.complaint_id,
            proposal_id=order.proposal_id,
            kind=order.kind,
            amount=order.amount,
            currency=order.currency,
            at=datetime.now(UTC),
            with_evidence=order.with_evidence,
            window_seconds=self.rules.latest().document.repeat.window.total_seconds(),
        )
        try:
            await asyncio.wait_for(
                self.client.start_workflow(
                    CUSTOMER_WORKFLOW_TYPE,
                    CustomerState(customer_id=ref),
                    id=customer_workflow_id(ref),
                    task_queue=_records_queue(),
                    start_signal=REMEDY_PAID,
                    start_signal_args=[payout],
                ),
                timeout=CUSTOMER_RECORD_PATIENCE.total_seconds(),
            )
        except (TimeoutError, RPCError) as error:
            log.warning(
                "customer record unavailable; this payout is not counted",
                complaint_id=order.complaint_id,
                error=type(error).__name__,
            )

    async def _deliver(self, key: str, payload: dict, url: str | None) -> str:
        if url:
            await post_idempotent(self.http, url, key, payload)
            return "http"
        await self.outbox.put(key, payload)
        return "outbox"

    @activity.defn
    async def rekey_case(self, change: KeyChange) -> int:
        """The case's payloads are sealed with a new key from now on; returns its generation (idempotent)."""
        subjects = self._subject_keys()
        if subjects is None:
            return change.generation + 1
        generation = await asyncio.to_thread(subjects.rekey, change.workflow_id, change.generation)
        log.info("case rekeyed", workflow_id=change.workflow_id, generation=generation)
        return generation

    @activity.defn
    async def shred_case_keys(self, change: KeyChange) -> list[str]:
        """Every key generation of the case below `change.generation` deleted for good; what the store could not
        make unrecoverable itself (backups) is returned and logged."""
        subjects = self._subject_keys()
        if subjects is None:
            return []
        await asyncio.to_thread(subjects.shred_before, change.workflow_id, change.generation)
        remaining = await asyncio.to_thread(subjects.after_erasure)
        log.info("case keys shredded", workflow_id=change.workflow_id, below=change.generation, remaining=remaining)
        return remaining

    def _subject_keys(self) -> codec.SubjectKeys | None:
        """The worker's case keys; None without payload encryption (then nothing was sealed to shred)."""
        encryption = self.client.data_converter.payload_codec
        if not isinstance(encryption, codec.EncryptionCodec):
            log.warning("case keys asked for, but this worker encrypts nothing")
            return None
        return encryption.subjects

    @activity.defn
    async def watch_trends(self, at: datetime) -> TrendReport:
        """The trend watch's day (activities/trends.py): the cases of this task queue, by the newest rules."""
        rules = self.rules.latest()
        settings = rules.document.trends
        if settings is None:
            day = at.astimezone(UTC).date() - timedelta(days=1)
            return TrendReport(ran_at=at, day=day, rule_version=rules.version, note="the rules have no trends section")
        report = await trends.watch(self.client, activity.info().task_queue, settings, at, rules.version)
        log.info("trends watched", series=len(report.series), warnings=len(report.warnings()), day=str(report.day))
        return report

    def all(self) -> list:
        return [
            self.watch_trends,
            self.rekey_case,
            self.shred_case_keys,
            self.triage,
            self.triage_and_acknowledge,
            self.compute_deadlines,
            self.shift_for_pause,
            self.check_proposal,
            self.authority,
            self.customer_ref,
            self.notify_customer,
            self.notify_staff,
            self.execute_remedy,
            self.record_case_end,
            self.send_care_package,
        ]
