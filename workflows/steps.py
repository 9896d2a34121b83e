"""Steps: work that a message asks for and one coroutine of the workflow does, one at a time, in order.

Why: a message handler that awaited an activity itself would interleave with the
other handlers and the main flow at every await, and a handler suspended on an
activity is the shape of the SDK bug in which an update handled on a cold start
beside an activity completion replays differently (temporalio/sdk-python#1591).
Here a handler only appends a step and waits for its answer; the step worker
does the steps in order, each seeing the state the previous one left, and each
re-checking it (the workflow may have moved on since the message was validated).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from workflows.messages import DATA_ERRORS, REFUSED, refusal


@dataclasses.dataclass(eq=False)
class Step:
    work: Callable[[], Awaitable[Any]]
    result: Any = None
    refused: str | None = None
    done: bool = False


class Steps:
    def __init__(self, refusals: tuple[type[Exception], ...] = ()) -> None:
        self._queue: deque[Step] = deque()
        self._refusals = refusals  # exceptions besides a Refused ApplicationError that answer as a refusal
        self._closed: str | None = None

    def close(self, reason: str) -> None:
        """No more steps (the workflow is ending without its worker): every waiting and later one is refused."""
        self._closed = reason
        for step in self._queue:
            step.refused, step.done = reason, True
        self._queue.clear()

    def __bool__(self) -> bool:
        """Whether a step is waiting or being done."""
        return bool(self._queue)

    async def ask(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Have `work` done after the steps asked before it; its answer, or its refusal raised."""
        if self._closed is not None:
            raise refusal(self._closed)
        step = Step(work)
        self._queue.append(step)
        await workflow.wait_condition(lambda: step.done)
        if step.refused is not None:
            raise refusal(step.refused)
        return step.result

    async def run(self) -> None:
        """The step worker: start it once as a task of the workflow; it never returns."""
        while True:
            await workflow.wait_condition(lambda: bool(self._queue))
            step = self._queue[0]
            try:
                step.result = await step.work()
            except ApplicationError as refused:
                if refused.type != REFUSED:
                    raise
                step.refused = refused.message
            except self._refusals as refused:
                step.refused = str(refused)
            except DATA_ERRORS as error:
                workflow.logger.error("step failed on its input; refused", extra={"error": type(error).__name__})
                step.refused = f"could not be applied ({type(error).__name__})"
            finally:
                self._queue.popleft()
                step.done = True
