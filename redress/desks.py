"""An agent desk's messages and state (the AgentDesk workflow: workflows/agent_desk.py).

Part of the contract (`redress schema`); apart from the workflow so that triage's
activity can route through a desk without importing the engine's workflow code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from redress.contract import Moment, Name, Seconds

# Its message and query, by name (the workflow: workflows/agent_desk.py; started with DESK_WORKFLOW_TYPE).
ROUTE = "route"  # update: RouteRequest -> Routed, sent by triage
DESK_QUERY = "desk"  # query: DeskState


class RouteRequest(BaseModel):
    complaint_id: Name
    intense: bool
    agents: list[Name] = Field(
        min_length=1, max_length=500, description="The queue's roster from the rules, in order of preference."
    )
    break_after: Annotated[int, Field(ge=1, le=1_000)]
    break_seconds: Seconds
    rule_version: Name


class Routed(BaseModel):
    agent: str
    streak: int = Field(description="The agent's intense cases in a row, this one included.")
    break_prompted: bool = False


class AgentState(BaseModel):
    streak: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    on_break_until: Moment | None = None
    handled: Annotated[int, Field(ge=0)] = 0

    def resting_at(self, now: datetime) -> bool:
        return self.on_break_until is not None and self.on_break_until > now


class DeskState(BaseModel):
    """Every date zone-aware and bounded (contract.Moment): the run does arithmetic on them."""

    queue: Name
    agents: dict[Name, AgentState] = Field(default_factory=dict)
    routed: dict[str, Routed] = Field(default_factory=dict, description="By complaint: retried triage asks again.")
    last_routed_at: Moment | None = None
