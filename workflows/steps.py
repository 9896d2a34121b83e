"""A case's steps: how one runs (`StepRunner`), and how messages ask for them in order (`Steps`).

`StepRunner` runs one activity of a case, first as a local activity (one marker
event, no workflow task of its own) and, should a peer stay down, as an ordinary
activity retried without end.

`Steps`: work that a message asks for and one coroutine of the workflow does, one at a time, in order.

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
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as StepTimedOut

from workflows.messages import DATA_ERRORS, REFUSED, refusal
from workflows.policies import ACTIVITY_TIMEOUT, PATIENT_RETRY, QUICK_RETRY


class StepRefused(Exception):
    """A step's peer refused it for good (a non-retryable error), whether it ran as an activity or a local one."""


def _refused_for_good(failure: ActivityError | ApplicationError) -> bool:
    """A local activity's own non-retryable error reaches the workflow unwrapped; an activity's, as its cause."""
    error = failure.cause if isinstance(failure, ActivityError) else failure
    return isinstance(error, ApplicationError) and error.non_retryable


def _reason(failure: ActivityError | ApplicationError) -> str:
    error = failure.cause if isinstance(failure, ActivityError) else failure
    return error.message if isinstance(error, ApplicationError) else str(error)


class StepRunner:
    """Runs one step of a case: `await run(ComplaintActivities.triage, facts)`.

    First as a local activity, tried QUICK_RETRY times; should it still fail (a peer is
    down), it goes on as an ordinary activity with PATIENT_RETRY, so a long outage shows
    in the UI as a retrying activity and does not keep the workflow task busy. A peer's
    refusal for good raises StepRefused either way.
    """

    def __init__(self) -> None:
        self.local_running = 0  # local activities under way: the search attributes wait for them

    async def __call__(self, method: Any, argument: Any) -> Any:
        self.local_running += 1
        try:
            return await workflow.execute_local_activity_method(
                method, argument, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=QUICK_RETRY
            )
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
            self.local_running -= 1
        try:
            return await workflow.execute_activity_method(
                method, argument, start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=PATIENT_RETRY
            )
        except ActivityError as failure:
            raise StepRefused(_reason(failure)) from None


@dataclasses.dataclass(eq=False)
class Step:
    work: Callable[[], Awaitable[Any]]
    result: Any = None
    refused: str | None = None
    done: bool = False


class Steps:
    """The step worker's queue: a message handler `ask`s for work and waits; `run` does it, in order."""

    def __init__(self) -> None:
        self._queue: deque[Step] = deque()
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
            except StepRefused as refused:
                step.refused = str(refused)
            except DATA_ERRORS as error:
                workflow.logger.error("step failed on its input; refused", extra={"error": type(error).__name__})
                step.refused = f"could not be applied ({type(error).__name__})"
            finally:
                self._queue.popleft()
                step.done = True
