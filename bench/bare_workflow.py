"""The bare floor for bench/floor.py: our complaint's Temporal calls with nothing inside them.

Every call an auto-remedied case makes, in the same order, with empty bodies:
- the case: 6 local activities (a customer notice rides in the step it
  follows), one deadline timer the case ends without cancelling, 4 updates
  (one awaits a step, as proposing does), and a search-attribute upsert per
  workflow task;
- beside it, as triage, the payment and the end of a case do: an update-with-start
  of the customer's record, a signal-with-start of the product's crisis watch, a
  signal-with-start of the record when the remedy is paid (what the customer was
  paid counts there) and another when the case ends. The record and the watch
  wait on a timer that each message re-plans, as ours do.

What it leaves out is what the goal is about: rules, pydantic models, payload
encryption, structured logs, and the size of real payloads.

Its own module, importing only temporalio (and our search-attribute keys, which
import only temporalio), so the workflow sandbox loads it as it loads ours.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy

from redress import search_attributes as sa

ACTIVITY_TIMEOUT = timedelta(seconds=30)
FIRST_UPSERT = [sa.COMPLAINT_STATUS, sa.SEVERITY, sa.CATEGORY, sa.QUEUE, sa.CHANNEL, sa.CUSTOMER_ID]


@activity.defn(name="bare_noop")
async def bare_noop(_: Any = None) -> None:
    return None


class BareActivities:
    """The steps that message other workflows, as our triage, execute_remedy and record_case_end do."""

    def __init__(self, client: Client, records_queue: str) -> None:
        self.client = client
        self.records_queue = records_queue

    @activity.defn(name="bare_triage")
    async def triage(self, keys: dict) -> None:
        start = WithStartWorkflowOperation(
            BareRecord.run,
            id=f"bare-customer-{keys['customer']}",
            task_queue=self.records_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        await self.client.execute_update_with_start_workflow(BareRecord.opened, {}, start_workflow_operation=start)
        await self.client.start_workflow(
            BareWatch.run,
            id=f"bare-crisis-{keys['sku']}",
            task_queue=self.records_queue,
            start_signal="reported",
            start_signal_args=[{}],
        )

    @activity.defn(name="bare_payment")
    async def payment(self, keys: dict) -> None:
        await self._tell_record(keys, "paid")

    @activity.defn(name="bare_case_end")
    async def case_end(self, keys: dict) -> None:
        await self._tell_record(keys, "ended")

    async def _tell_record(self, keys: dict, signal: str) -> None:
        await self.client.start_workflow(
            BareRecord.run,
            id=f"bare-customer-{keys['customer']}",
            task_queue=self.records_queue,
            start_signal=signal,
            start_signal_args=[{}],
        )

    def all(self) -> list:
        return [bare_noop, self.triage, self.payment, self.case_end]


@workflow.defn(name="BareComplaint")
class BareComplaint:
    """Our complaint's Temporal calls with nothing inside them."""

    def __init__(self) -> None:
        self.stage = "received"
        self.pending: list[str] = []  # steps the main loop still has to run
        self.done = False

    @workflow.run
    async def run(self, keys: dict) -> str:
        await self._step("bare_triage", keys)
        self._upsert(first=True)  # triage carried the acknowledgement
        self.stage = "acknowledged"
        # the deadline watcher's one timer, which the case ends without cancelling
        self.timer = asyncio.create_task(workflow.sleep(timedelta(hours=1)))
        while not (self.done and not self.pending):
            await workflow.wait_condition(lambda: bool(self.pending) or self.done)
            while self.pending:
                name = self.pending.pop(0)
                await self._step(name, keys if name != "bare_noop" else None)
        await self._step("bare_case_end", keys)  # tell the customer's record, then the customer
        return self.stage

    async def _step(self, name: str = "bare_noop", argument: Any = None) -> None:
        """Each step as ours runs it: a local activity."""
        await workflow.execute_local_activity(name, argument, start_to_close_timeout=ACTIVITY_TIMEOUT)

    def _upsert(self, first: bool = False) -> None:
        """Ours publishes its search attributes once per workflow task that changed them."""
        workflow.upsert_search_attributes(
            [key.value_set(self.stage) for key in (FIRST_UPSERT if first else FIRST_UPSERT[:1])]
        )

    @workflow.query
    def status(self) -> dict:
        return {"stage": self.stage}

    @workflow.update
    def record_response(self, _: Any) -> dict:
        self.stage = "in_progress"
        self.pending.append("bare_noop")  # the response goes to the customer
        self._upsert()
        return {"stage": self.stage}

    @workflow.update
    async def propose_remedy(self, _: Any) -> dict:
        await self._step()  # the rules' check
        self.stage = "remedy_executed"
        self.pending.append("bare_payment")  # payment, its notice within; the customer's record is told
        self._upsert()
        return {"stage": self.stage}

    @workflow.update
    def resolve(self, _: Any) -> dict:
        self.stage = "follow_up"
        self.pending.append("bare_noop")
        self._upsert()
        return {"stage": self.stage}

    @workflow.update
    def customer_feedback(self, _: Any) -> dict:
        self.stage, self.done = "closed", True  # the closing notice goes with the case's end
        self._upsert()
        return {"stage": self.stage}


class _Replanning:
    """A long-lived workflow that sleeps until its next moment and re-plans the timer on every message."""

    def __init__(self) -> None:
        self.replan = False

    async def _sleep_replanning(self, timeout: timedelta) -> None:
        while True:
            self.replan = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self.replan, timeout=timeout)


@workflow.defn(name="BareRecord")
class BareRecord(_Replanning):
    """The customer's record: an update when a case opens, a signal when it pays and when it ends."""

    @workflow.run
    async def run(self) -> None:
        await self._sleep_replanning(timedelta(days=1))

    @workflow.update
    def opened(self, _: Any) -> dict:
        self.replan = True
        return {}

    @workflow.signal
    def paid(self, _: Any) -> None:
        self.replan = True

    @workflow.signal
    def ended(self, _: Any) -> None:
        self.replan = True


@workflow.defn(name="BareWatch")
class BareWatch(_Replanning):
    """The product's crisis watch: a signal per complaint, a quiet window of an hour."""

    @workflow.run
    async def run(self) -> None:
        await self._sleep_replanning(timedelta(hours=1))

    @workflow.signal
    def reported(self, _: Any) -> None:
        self.replan = True
