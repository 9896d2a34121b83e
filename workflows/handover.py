"""Continue-as-new for the long-lived workflows: customer record, crisis watch, agent desk."""

from __future__ import annotations

from typing import Any

from temporalio import workflow


async def continue_as_new_if_suggested(state: Any) -> None:
    """Hand the state to a fresh run once the server suggests it, so history stays bounded.

    Running handlers finish first: an update cut off by the hand-over would fail its caller.
    """
    if workflow.info().is_continue_as_new_suggested():
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(state)
