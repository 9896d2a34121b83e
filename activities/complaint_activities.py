"""The activities of the Complaint workflow, as methods sharing one HTTP client and one rule store.

Logs name the complaint and the template, never the customer's contact details.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import structlog
from temporalio import activity

from activities.io import (
    CustomerNotice,
    DeadlineAnswer,
    DeadlineRequest,
    PauseShift,
    ProposalCheck,
    ProposalVerdict,
    RemedyOrder,
    RemedyReceipt,
    ShiftedDeadlines,
    StaffNotice,
    TriageFacts,
    TriageResult,
)
from activities.outbox import Outbox
from activities.peers import post_idempotent
from activities.rules import engine
from activities.rules.store import RuleStore
from activities.settings import Settings
from activities.templates import render

log = structlog.get_logger(__name__)


class ComplaintActivities:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, rules: RuleStore):
        self.settings = settings
        self.http = http
        self.rules = rules
        self.outbox = Outbox(settings.outbox_path)

    @activity.defn
    async def triage(self, facts: TriageFacts) -> TriageResult:
        """The whole rule set in one activity: one history event per triage, not one per rule."""
        result = engine.triage(self.rules.latest(), facts)
        log.info(
            "triaged", complaint_id=facts.complaint_id, rule_version=result.rule_version,
            category=result.category, severity=result.severity.value, queue=result.queue, fired=result.fired,
        )
        return result

    @activity.defn
    async def compute_deadlines(self, request: DeadlineRequest) -> DeadlineAnswer:
        rule_set = self.rules.get(request.rule_version)
        return DeadlineAnswer(
            rule_version=rule_set.version,
            deadlines=engine.deadlines_for(rule_set, request.severity, request.start, request.names,
                                           timedelta(seconds=request.paused_seconds), request.category,
                                           request.queue),
            escalate_to=rule_set.document.tiers[request.severity].escalate_to,
            chains=engine.chains_for(rule_set, request.severity),
        )

    @activity.defn
    async def shift_for_pause(self, shift: PauseShift) -> ShiftedDeadlines:
        return engine.shift_for_pause(self.rules.get(shift.rule_version), shift)

    @activity.defn
    async def check_proposal(self, check: ProposalCheck) -> ProposalVerdict:
        verdict = engine.check_proposal(self.rules.get(check.rule_version), check)
        log.info("proposal checked", complaint_id=check.complaint_id, needs_approval=verdict.needs_approval,
                 required_role=verdict.required_role, allowed=verdict.allowed)
        return verdict

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
        log.info("customer notified", complaint_id=notice.complaint_id, template=notice.template,
                 language=language, via=via)
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
        log.info("staff notified", complaint_id=notice.complaint_id, template=notice.template, role=notice.role, via=via)
        return via

    @activity.defn
    async def execute_remedy(self, order: RemedyOrder) -> RemedyReceipt:
        payload = order.model_dump(mode="json")
        if self.settings.payment_url:
            body = await post_idempotent(self.http, self.settings.payment_url, order.idempotency_key, payload)
            transaction_id = str(body.get("transaction_id") or "")
            if not transaction_id:
                raise RuntimeError(f"{self.settings.payment_url} answered without a transaction_id; will retry")
            via = "http"
        else:
            transaction_id = "outbox-" + hashlib.sha256(order.idempotency_key.encode()).hexdigest()[:16]
            await self.outbox.put(order.idempotency_key, {"audience": "payment", **payload, "transaction_id": transaction_id})
            via = "outbox"
        log.info("remedy executed", complaint_id=order.complaint_id, proposal_id=order.proposal_id,
                 kind=order.kind.value, amount=str(order.amount), currency=order.currency, via=via,
                 transaction_id=transaction_id)
        return RemedyReceipt(transaction_id=transaction_id, via=via)

    async def _deliver(self, key: str, payload: dict, url: str | None) -> str:
        if url:
            await post_idempotent(self.http, url, key, payload)
            return "http"
        await self.outbox.put(key, payload)
        return "outbox"

    def all(self) -> list:
        return [
            self.triage, self.compute_deadlines, self.shift_for_pause, self.check_proposal,
            self.notify_customer, self.notify_staff, self.execute_remedy,
        ]
