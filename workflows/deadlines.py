"""The deadline planner: what falls due next in a case, as a typed event. Pure: no clock, no I/O.

A case has deadlines (first response, next update, resolution), each with a chain
from the rules: warnings before it, the breach at it, escalation levels after it.
Two more things wait on the same single timer: the approver's decision deadline
and the survey window. The case's deadline watcher (workflows/complaint.py) sleeps
until `next_due(...)` and acts on it; whenever the answer changes (a deadline met,
moved, paused), it plans again. Tests call these functions with plain values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.io import PlannedStep
    from redress.contract import Deadline


class Due(StrEnum):
    warning = "warning"  # a chain step before its deadline
    breach = "breach"  # the deadline itself was missed
    level = "level"  # an escalation level after the breach
    approval = "approval"  # the approver asked did not decide in time
    survey = "survey"  # the survey window closed without an answer


@dataclass(frozen=True)
class DueEvent:
    at: datetime
    kind: Due
    deadline: str | None = None  # whose chain it is; None for approval and survey
    step: PlannedStep | None = None  # the chain step (warning and level)

    @property
    def order(self) -> tuple[datetime, str]:
        """Earliest first; at the same instant, by name (a deadline's, or "approval" and "survey")."""
        return self.at, self.deadline or self.kind.value

    def summary(self) -> str:
        """What the Temporal UI shows for the timer: "first_response deadline", "resolution warning"..."""
        if self.kind == Due.approval:
            return "approval timeout"
        if self.kind == Due.survey:
            return "survey window"
        return f"{self.deadline} deadline" if self.kind == Due.breach else f"{self.deadline} {self.kind.value}"


def chain(name: str, deadline: Deadline, steps: list[PlannedStep] | None, escalate_to: str | None) -> list[DueEvent]:
    """A deadline's events in firing order: warnings, the breach itself, then the levels.

    Without a chain from the rules, a miss notifies `escalate_to` (the tier's role).
    """
    steps = steps or [PlannedStep(after_seconds=0, notify=escalate_to)]

    def at(step: PlannedStep) -> datetime:
        return deadline.due + timedelta(seconds=step.after_seconds)

    warnings = [DueEvent(at(step), Due.warning, name, step) for step in steps if step.after_seconds < 0]
    levels = [DueEvent(at(step), Due.level, name, step) for step in steps if step.after_seconds >= 0]
    return [*warnings, DueEvent(deadline.due, Due.breach, name), *levels]


def next_due(
    deadlines: Mapping[str, Deadline],
    chains: Mapping[str, list[PlannedStep]],
    escalate_to: str | None,
    *,
    paused: bool = False,
    approval_due: datetime | None = None,
    survey_until: datetime | None = None,
) -> DueEvent | None:
    """The earliest event still to come; None when nothing waits (or the case waits on the customer).

    A deadline's `fired` counts the events of its chain already acted on; a met deadline
    stops its chain. `approval_due` and `survey_until` are given only while they count.
    """
    if paused:
        return None  # waiting on the customer: no clock runs, no warning fires
    upcoming = []
    for name, deadline in deadlines.items():
        if deadline.met_at is not None:
            continue
        events = chain(name, deadline, chains.get(name), escalate_to)
        if deadline.fired < len(events):
            upcoming.append(events[deadline.fired])
    if approval_due is not None:
        upcoming.append(DueEvent(approval_due, Due.approval))
    if survey_until is not None:
        upcoming.append(DueEvent(survey_until, Due.survey))
    return min(upcoming, key=lambda event: event.order) if upcoming else None
