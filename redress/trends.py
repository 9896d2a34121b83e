"""The trend watch's results, and the daily Temporal Schedule that runs it.

A Schedule (one per task queue, `redress-trends-<queue>`) starts the TrendWatch
workflow (workflows/trends.py) every day at the rules' `trends.at`; its activity
counts complaints per UTC day received, by category and by product, forecasts the
next days and warns the rules' role about what left the usual band. The result of
the newest run is what `redress trends` and `redress report` show: a Schedule
keeps its recent runs, so no other store is needed.

Counts only: category names, product SKUs and numbers, no personal data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

TREND_WORKFLOW_TYPE = "TrendWatch"
RUN_TIMEOUT = timedelta(hours=2)

Signal = Literal["usual", "above_band", "below_band", "peak_ahead"]
Dimension = Literal["category", "product"]


class TrendSeries(BaseModel):
    """One category's or product's daily volume, its usual band and forecast, and what the watch made of it."""

    by: Dimension
    name: str
    days: list[int] = Field(description="Complaints per UTC day received, oldest first; the last is the report's day.")
    median: float = Field(description="The usual day: the median of the days before the last.")
    low: float
    high: float = Field(description="The usual band's upper edge: more than this is unusual.")
    forecast: list[float] = Field(default_factory=list, description="The next days, from the day after the last.")
    signal: Signal = "usual"
    reason: str | None = None

    @property
    def label(self) -> str:
        return f"{self.by} {self.name}"


class TrendReport(BaseModel):
    """What one run of the trend watch found."""

    ran_at: datetime
    day: date = Field(description="The last full UTC day counted (the day before the run).")
    rule_version: str
    notify: str | None = None
    model: str = Field(default="", description="The forecast's model, as the report names it.")
    series: list[TrendSeries] = Field(default_factory=list)
    not_watched: int = Field(default=0, description="Categories and products below the rules' min_cases.")
    note: str | None = Field(default=None, description="Why nothing was judged (no trends section, warming up).")
    newer_unfinished: int = Field(
        default=0, description="Runs after this one that did not complete (failed, timed out, running): stale?"
    )

    def warnings(self) -> list[TrendSeries]:
        return [series for series in self.series if series.signal != "usual"]


def schedule_id(task_queue: str) -> str:
    return f"redress-trends-{task_queue}"


def _schedule(task_queue: str, at: time, time_zone: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            TREND_WORKFLOW_TYPE,
            id=schedule_id(task_queue),
            task_queue=task_queue,
            execution_timeout=RUN_TIMEOUT,  # a run that cannot finish must not hold back the next day's
        ),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(at.hour)], minute=[ScheduleRange(at.minute)])],
            time_zone_name=time_zone,
        ),
        # a run missed while the cluster was down is made up within half a day; two never overlap
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=12)),
    )


async def ensure_schedule(client: Client, task_queue: str, at: time | None, time_zone: str = "UTC") -> None:
    """The daily schedule as the rules want it: created, moved to the rules' time, or deleted when they have no
    `trends:` section (`at` None). Several workers may do this at once: the last one's view stands."""
    handle = client.get_schedule_handle(schedule_id(task_queue))
    if at is None:
        try:
            await handle.delete()
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        return
    wanted = _schedule(task_queue, at, time_zone)
    try:
        await client.create_schedule(schedule_id(task_queue), wanted)
    except ScheduleAlreadyRunningError:

        def update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule = current.description.schedule  # its state (an operator's pause and note) is kept
            schedule.action, schedule.spec, schedule.policy = wanted.action, wanted.spec, wanted.policy
            return ScheduleUpdate(schedule=schedule)

        await handle.update(update)


async def last_report(client: Client, task_queue: str) -> TrendReport | None:
    """The newest completed run's report, or None (no schedule, or it has not run yet)."""
    try:
        description = await client.get_schedule_handle(schedule_id(task_queue)).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    unfinished = 0
    for started in reversed(_started(description.info.recent_actions)):
        handle = client.get_workflow_handle(
            started.workflow_id, run_id=started.first_execution_run_id, result_type=TrendReport
        )
        try:
            status = (await handle.describe()).status
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            continue  # gone: past the namespace's retention
        if status == WorkflowExecutionStatus.COMPLETED:
            report = await handle.result()
            report.newer_unfinished = unfinished
            return report
        unfinished += 1
    return None


def _started(actions: Sequence[ScheduleActionResult]) -> list[ScheduleActionExecutionStartWorkflow]:
    return [a.action for a in actions if isinstance(a.action, ScheduleActionExecutionStartWorkflow)]


async def run_now(client: Client, task_queue: str, timeout: float = 120.0) -> TrendReport:
    """Trigger the schedule now (as its daily time would) and wait for that run's report."""
    handle = client.get_schedule_handle(schedule_id(task_queue))

    def runs(actions: Sequence[ScheduleActionResult]) -> list[tuple[str, str | None]]:
        return [(a.workflow_id, a.first_execution_run_id) for a in _started(actions)]

    before = set(runs((await handle.describe()).info.recent_actions))
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        actions = (await handle.describe()).info.recent_actions
        started = [a for a in _started(actions) if (a.workflow_id, a.first_execution_run_id) not in before]
        if started:
            latest = started[-1]
            run = client.get_workflow_handle(
                latest.workflow_id, run_id=latest.first_execution_run_id, result_type=TrendReport
            )
            return await run.result()
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"the trend schedule did not start a run within {timeout:.0f} s")
        await asyncio.sleep(0.2)
