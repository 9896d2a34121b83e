"""What the long-lived workflows (customer record, crisis watch, agent desk) share: how a run ends or hands over."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.messages import DATA_ERRORS, refusal

T = TypeVar("T")


async def ended_on_bad_state(run: Awaitable[T]) -> T:
    """Run a long-lived workflow's loop; an error its state provokes ends the run with the reason.

    Its state comes from a message (the start, or continue-as-new) that anyone with namespace
    access can send: a state the models let through but the loop cannot work with must end the
    run with a reason, not fail its workflow task again and again.
    """
    try:
        return await run
    except DATA_ERRORS as error:
        workflow.logger.error(
            "long-lived workflow ended on a state it cannot work with", extra={"error": type(error).__name__}
        )
        raise refusal(f"this workflow could not go on with its state ({type(error).__name__}) and ended") from None


async def continue_as_new_if_suggested(state: Any) -> None:
    """Hand the state to a fresh run once the server suggests it, so history stays bounded.

    Running handlers finish first: an update cut off by the hand-over would fail its caller.
    """
    if workflow.info().is_continue_as_new_suggested():
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(state)
