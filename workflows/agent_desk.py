"""One workflow per queue with a roster: who takes the next complaint, and who needs a break.

Intense complaints (anger at or above the rules' `agent_load.intense_anger`)
wear people out. The desk gives each new complaint of its queue to the first
agent on the roster who is not on a break. An agent's run of intense cases in
a row grows with each one and ends with a calm one; when it reaches
`break_after`, the agent is sent a break prompt and is skipped for
`break_length`, so the next angry customer goes to someone else.

Triage asks the desk with update-with-start (`route`); the answer is the
assignee recorded on the case. The desk ends after a day without complaints
(and nobody on a break) and continues as new when its history grows.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, timedelta
from typing import Any

from temporalio import workflow

from workflows.handover import continue_as_new_if_suggested, ended_on_bad_state
from workflows.policies import ACTIVITY_TIMEOUT, PATIENT_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from activities.io import StaffNotice
    from activities.rules.schema import Template
    from redress.contract import DESK_WORKFLOW_TYPE
    from redress.desks import AgentState, DeskState, Routed, RouteRequest
    from workflows.messages import problems, refusal, takes

IDLE_END = timedelta(days=1)


@workflow.defn(name=DESK_WORKFLOW_TYPE)
class AgentDesk:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._state, self._refused = problems(DeskState, raw, root="input")
        self._prompts: list[StaffNotice] = []
        self._replan = False

    @property
    def state(self) -> DeskState:
        """The state; one that refused its input has none, and refuses every message."""
        if self._state is None:
            raise refusal("this desk refused its input and is ending")
        return self._state

    @workflow.run
    async def run(self, raw: Any) -> DeskState:
        if self._state is None:  # junk input: the run ends at once, failing with the reason
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise refusal("; ".join(self._refused))
        return await ended_on_bad_state(self._live())

    async def _live(self) -> DeskState:
        while True:
            self._replan = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._replan or bool(self._prompts) or workflow.info().is_continue_as_new_suggested(),
                    timeout=IDLE_END,
                    timeout_summary="a day without complaints ends the desk",
                )
            while self._prompts:
                await workflow.execute_activity_method(
                    ComplaintActivities.notify_staff,
                    self._prompts.pop(0),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    retry_policy=PATIENT_RETRY,
                )
            await continue_as_new_if_suggested(self.state)
            if self._idle():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._idle() and not self._prompts:
                    return self.state

    def _idle(self) -> bool:
        now = workflow.now()
        last = self.state.last_routed_at
        on_break = any(a.on_break_until and a.on_break_until > now for a in self.state.agents.values())
        return last is not None and now - last >= IDLE_END and not on_break

    @workflow.update
    @takes(RouteRequest)
    def route(self, request: RouteRequest) -> Routed:
        state = self.state
        if request.complaint_id in state.routed:
            return state.routed[request.complaint_id]
        now = workflow.now()
        for name in request.agents:
            state.agents.setdefault(name, AgentState())
        available = [n for n in request.agents if not state.agents[n].resting_at(now)]
        name = available[0] if available else request.agents[0]  # everyone resting: the case still needs someone
        agent = state.agents[name]
        agent.handled += 1
        agent.streak = agent.streak + 1 if request.intense else 0
        routed = Routed(agent=name, streak=agent.streak)
        if request.intense and agent.streak >= request.break_after:
            agent.on_break_until = now + timedelta(seconds=request.break_seconds)
            agent.streak = 0
            routed.break_prompted = True
            self._prompts.append(
                StaffNotice(
                    complaint_id=request.complaint_id,
                    key=f"break:{state.queue}:{name}:{request.complaint_id}",
                    template=Template.agent_break,
                    role="agent",
                    person=name,
                    rule_version=request.rule_version,
                    params={
                        "agent": name,
                        "count": str(routed.streak),
                        "queue": state.queue,
                        "due": agent.on_break_until.astimezone(UTC).strftime("%H:%M UTC"),
                    },
                )
            )
        state.routed[request.complaint_id] = routed
        state.routed = dict(list(state.routed.items())[-1000:])  # enough to answer retries; history stays small
        state.last_routed_at = now
        self._replan = True
        return routed

    @route.validator
    @takes(RouteRequest)
    def _check_route(self, request: RouteRequest) -> None:
        """Reading the message is the check (a refusal here leaves no trace in history).

        The desk must have taken its input.
        """
        if self._state is None:
            raise refusal("this desk refused its input and is ending")

    @workflow.query
    def desk(self) -> DeskState:
        return self.state
