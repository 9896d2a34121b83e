"""A case's notices to the customer and to staff: queued, then sent one at a time, in order.

Each notice carries an idempotency key made of the case id and a sequence number,
so a notifier that is asked twice (a retried activity) delivers it once. A notice
that follows a step may instead ride in that step's activity (`sent_along`): the
acknowledgement in triage's, the remedy's notice in the payment's.
"""

from __future__ import annotations

from collections import deque

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from activities.io import CustomerNotice, Delivery, StaffNotice, notice_params
    from redress.contract import Customer, ProposalRecord
    from workflows.case_state import CaseState
    from workflows.steps import StepRefused, StepRunner

Notice = CustomerNotice | StaffNotice


class Notices:
    def __init__(self, case: CaseState, run: StepRunner, sequence: int = 0) -> None:
        self.case = case
        self.run = run
        self.queue: deque[Notice] = deque()
        self.sending = False
        self.stopped = False
        self._sequence = sequence  # a case continued in a new run goes on counting (notice keys stay unique)

    @property
    def sequence(self) -> int:
        return self._sequence

    def readdress(self, customer: Customer) -> None:
        """Corrected contact details: the customer's notices still queued go to them."""
        for position, notice in enumerate(self.queue):
            if isinstance(notice, CustomerNotice):
                self.queue[position] = notice.model_copy(update={"customer": customer})

    # ------------------------------------------------------------ making them

    def tell_customer(self, template: str, proposal: ProposalRecord | None = None, **extra: str) -> None:
        self.queue.append(self.for_customer(template, proposal, **extra))

    def tell_staff(
        self,
        template: str,
        to_role: str | None,
        proposal: ProposalRecord | None = None,
        person: str | None = None,
        **extra: str,
    ) -> None:
        self.queue.append(
            StaffNotice(
                complaint_id=self.case.id,
                key=self._next_key(template),
                template=template,
                role=to_role or "",
                person=person,
                rule_version=self.case.rule_version,
                params=self._params(proposal, **extra),
            )
        )

    def for_customer(
        self, template: str, proposal: ProposalRecord | None = None, key: str | None = None, **extra: str
    ) -> CustomerNotice:
        """A customer notice, not queued (it may ride along a step); `key` to complete a draft sent earlier."""
        complaint = self.case.received
        return CustomerNotice(
            complaint_id=self.case.id,
            key=key or self._next_key(template),
            template=template,
            language=self.case.reply_language(),
            customer=complaint.customer,
            channel=complaint.channel,
            rule_version=self.case.rule_version or "",
            params=self._params(proposal, **extra),
        )

    def _next_key(self, template: str) -> str:
        self._sequence += 1
        return f"notice:{self.case.id}:{self._sequence}:{template}"

    def _params(self, proposal: ProposalRecord | None = None, **extra: str) -> dict[str, str]:
        case = self.case
        params = notice_params(case.id, case.severity, case.queue, {name: d.due for name, d in case.deadlines.items()})
        if proposal:
            params.update(
                proposal_id=proposal.proposal_id,
                remedy=proposal.kind.value,
                amount=str(proposal.amount),
                currency=proposal.currency,
            )
        return {**params, **extra}

    # ------------------------------------------------------------ sending them

    @property
    def waiting(self) -> bool:
        """A notice is queued and not yet being sent (it is about to start)."""
        return bool(self.queue) and not self.sending

    def stop(self) -> None:
        """Send what is queued, then end `send_all`."""
        self.stopped = True

    async def send_all(self) -> None:
        """The sender: start once as a task of the workflow; it ends after `stop` once the queue is empty."""
        while True:
            await workflow.wait_condition(lambda: bool(self.queue) or self.stopped)
            if not self.queue:
                return
            self.sending = True
            try:
                await self.send(self.queue[0])
            finally:
                self.sending = False
            self.queue.popleft()

    async def send(self, notice: Notice) -> None:
        activity = (
            ComplaintActivities.notify_customer
            if isinstance(notice, CustomerNotice)
            else ComplaintActivities.notify_staff
        )
        try:
            await self.run(activity, notice)
        except StepRefused as refused:
            # The peer refused this message for good (e.g. a bad address): record it, keep the case going.
            self._failed(notice, str(refused))

    def sent_along(self, notice: CustomerNotice, delivery: Delivery | None) -> bool:
        """Whether a notice sent within its step's activity is done with: delivered, or refused (recorded).

        False: the notifier did not take it, and it is the caller's to send the usual way.
        """
        if delivery is not None and delivery.outcome == "refused":
            self._failed(notice, delivery.reason)
        return delivery is not None and delivery.outcome != "deferred"

    def _failed(self, notice: Notice, reason: str | None) -> None:
        self.case.event(
            "notice_failed",
            "notifier",
            f"{notice.template} not delivered: {reason}",
            template=notice.template,
            key=notice.key,
        )
