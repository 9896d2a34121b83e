# Frozen: workflows/customer.py as of commit 33ca1c0, the code that wrote ../sdk-python-1591-cold-update.json (imports rewritten).
# Not used by Redress: the tripwire in tests/test_upstream.py replays that history on it. Do not edit.
"""One long-lived workflow per customer: their complaints across cases, and the churn watch after a close.

Why a workflow and not a visibility query: its answers are consistent the
moment a complaint is recorded (visibility lags), and the churn watch is a
durable timer per closed case that a purchase cancels.

- The triage activity records each new complaint with update-with-start
  (`complaint_opened`) and gets back the facts the rules read:
  `customer.complaints_90d` and `order.open_complaints`.
- A case that ends sends `complaint_ended` (signal-with-start, from an activity).
  A closed case starts a churn watch when the rules have one.
- The order system sends `customer_purchased` (signal-with-start): it ends the
  watches of cases closed before the purchase.
- A watch whose window passes without a purchase sends the care package
  (activity), once.

History stays bounded: the workflow continues as new when Temporal suggests
it, carrying its state, and ends once it holds nothing (no complaint inside the
repeat window, no open case, no watch).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from tests.upstream.code_33ca1c0.contract import M, Channel, Customer, parse_signal

CUSTOMER_WORKFLOW_TYPE = "CustomerRecord"
CUSTOMER_ID_PREFIX = "customer-"
PATIENT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))


def customer_workflow_id(customer_id: str) -> str:
    return f"{CUSTOMER_ID_PREFIX}{customer_id}"


class ComplaintOpened(BaseModel):
    complaint_id: str
    order_id: str | None = None
    received_at: datetime
    window_seconds: float = Field(description="The rules' repeat window (customer.complaints_90d).")


class CustomerFacts(BaseModel):
    """What triage rules may know of a customer's other complaints."""

    complaints_in_window: int = Field(description="Complaints received in the repeat window, this one included.")
    open_on_order: int = Field(description="Other open complaints about the same order.")


class ComplaintEnded(BaseModel):
    complaint_id: str
    stage: str
    ended_at: datetime
    rule_version: str | None = None
    customer: Customer
    channel: Channel
    language: str = "en"
    profile: str | None = None
    churn_window_seconds: float | None = Field(default=None, description="None: no churn watch for this case.")


class Purchase(BaseModel):
    at: datetime | None = None
    order_id: str | None = None


class CaseEntry(BaseModel):
    complaint_id: str
    order_id: str | None = None
    received_at: datetime
    open: bool = True


class ChurnWatch(BaseModel):
    ended: ComplaintEnded
    due: datetime


class CareOrder(BaseModel):
    """The send_care_package activity's input: the watch ran out with no purchase."""

    customer_id: str
    ended: ComplaintEnded


class CustomerState(BaseModel):
    customer_id: str
    cases: list[CaseEntry] = Field(default_factory=list)
    watches: list[ChurnWatch] = Field(default_factory=list)
    last_purchase_at: datetime | None = None
    care_sent: list[str] = Field(default_factory=list, description="Complaints whose care package went out.")
    keep_until: datetime | None = None


@workflow.defn(name=CUSTOMER_WORKFLOW_TYPE)
class CustomerRecord:
    @workflow.init
    def __init__(self, state: CustomerState) -> None:
        self._state = state
        self._replan = False  # a message changed what to wait for: compute the sleep again

    @workflow.run
    async def run(self, state: CustomerState) -> CustomerState:
        while True:
            self._replan = False
            try:
                await workflow.wait_condition(
                    lambda: self._replan or self._due_watch() is not None
                    or workflow.info().is_continue_as_new_suggested(),
                    timeout=self._sleep(), timeout_summary="next churn watch or end of record",
                )
            except asyncio.TimeoutError:
                pass
            watch = self._due_watch()
            if watch is not None:
                await self._send_care(watch)
                continue
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._state)
            if self._holds_nothing():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._holds_nothing():
                    return self._state

    def _sleep(self) -> timedelta | None:
        """Until the next watch falls due or the record may end."""
        moments = [w.due for w in self._state.watches]
        if self._state.keep_until:
            moments.append(self._state.keep_until)
        if not moments:
            return timedelta(days=1)
        return max(timedelta(seconds=0.01), min(moments) - workflow.now())

    def _due_watch(self) -> ChurnWatch | None:
        now = workflow.now()
        return next((w for w in self._state.watches if w.due <= now), None)

    def _holds_nothing(self) -> bool:
        state = self._state
        return (not state.watches and not any(c.open for c in state.cases)
                and (state.keep_until is None or state.keep_until <= workflow.now()))

    async def _send_care(self, watch: ChurnWatch) -> None:
        self._state.watches.remove(watch)
        await workflow.execute_activity(
            "send_care_package",
            CareOrder(customer_id=self._state.customer_id, ended=watch.ended),
            start_to_close_timeout=timedelta(seconds=30), retry_policy=PATIENT_RETRY,
        )
        self._state.care_sent.append(watch.ended.complaint_id)

    @workflow.update
    def complaint_opened(self, opened: ComplaintOpened) -> CustomerFacts:
        state = self._state
        if not any(c.complaint_id == opened.complaint_id for c in state.cases):  # a retried triage counts once
            state.cases.append(CaseEntry(complaint_id=opened.complaint_id, order_id=opened.order_id,
                                         received_at=opened.received_at))
        window = timedelta(seconds=opened.window_seconds)
        since = opened.received_at - window
        state.cases = [c for c in state.cases if c.open or c.received_at >= since]
        keep = opened.received_at + window
        state.keep_until = max(state.keep_until, keep) if state.keep_until else keep
        self._replan = True
        return CustomerFacts(
            complaints_in_window=sum(1 for c in state.cases if since <= c.received_at <= opened.received_at),
            open_on_order=sum(1 for c in state.cases if c.open and opened.order_id and c.order_id == opened.order_id
                              and c.complaint_id != opened.complaint_id),
        )

    @workflow.signal
    def complaint_ended(self, raw: Any) -> None:
        ended = self._argument(ComplaintEnded, raw, "complaint_ended")
        if ended is None:
            return
        for case in self._state.cases:
            if case.complaint_id == ended.complaint_id:
                case.open = False
        watched = {w.ended.complaint_id for w in self._state.watches} | set(self._state.care_sent)
        if ended.stage == "closed" and ended.churn_window_seconds and ended.complaint_id not in watched:
            self._state.watches.append(
                ChurnWatch(ended=ended, due=ended.ended_at + timedelta(seconds=ended.churn_window_seconds)))
        self._replan = True

    @workflow.signal
    def customer_purchased(self, raw: Any) -> None:
        purchase = self._argument(Purchase, raw, "customer_purchased")
        if purchase is None:
            return
        at = purchase.at or workflow.now()
        self._state.last_purchase_at = max(at, self._state.last_purchase_at or at)
        self._state.watches = [w for w in self._state.watches if w.ended.ended_at > at]
        self._replan = True

    def _argument(self, model: type[M], raw: Any, name: str) -> M | None:
        value, problems = parse_signal(model, raw)
        if value is None:  # a signal cannot be refused to its sender: log it (no personal data in problems)
            workflow.logger.warning(f"{name} signal ignored", extra={"customer_record": self._state.customer_id,
                                                                    "problems": problems})
        return value

    @workflow.query
    def record(self) -> CustomerState:
        return self._state
