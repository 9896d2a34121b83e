"""The bare floor for bench/floor.py: our complaint's Temporal calls with nothing inside them.

Its own module, importing only temporalio, so the workflow sandbox loads it as it loads ours.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow

ACTIVITY_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="bare_noop")
async def bare_noop(_: Any = None) -> None:
    return None


@workflow.defn(name="BareComplaint")
class BareComplaint:
    """Our complaint's Temporal calls with nothing inside them."""

    def __init__(self) -> None:
        self.stage = "received"
        self.pending = 0  # steps the main loop still has to run
        self.done = False

    @workflow.run
    async def run(self, _: Any) -> str:
        await self._noop()  # triage
        self.stage = "acknowledged"
        self.pending += 1  # acknowledgement
        # the deadline watcher's one timer, which the case ends without cancelling
        asyncio.create_task(workflow.sleep(timedelta(hours=1)))
        while not (self.done and self.pending == 0):
            await workflow.wait_condition(lambda: self.pending > 0 or self.done)
            while self.pending:
                self.pending -= 1
                await self._noop()
        await self._noop()  # tell the customer's record
        return self.stage

    async def _noop(self) -> None:
        """Each step as ours runs it: a local activity."""
        await workflow.execute_local_activity(bare_noop, None, start_to_close_timeout=ACTIVITY_TIMEOUT)

    @workflow.query
    def status(self) -> dict:
        return {"stage": self.stage}

    @workflow.update
    def record_response(self, _: Any) -> dict:
        self.stage, self.pending = "in_progress", self.pending + 1
        return {"stage": self.stage}

    @workflow.update
    async def propose_remedy(self, _: Any) -> dict:
        await self._noop()  # the rules' check
        self.stage = "remedy_executed"
        self.pending += 2  # payment, then its notice
        return {"stage": self.stage}

    @workflow.update
    def resolve(self, _: Any) -> dict:
        self.stage, self.pending = "follow_up", self.pending + 1
        return {"stage": self.stage}

    @workflow.update
    def customer_feedback(self, _: Any) -> dict:
        self.stage, self.pending, self.done = "closed", self.pending + 1, True
        return {"stage": self.stage}
