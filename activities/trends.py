"""The trend watch's work: complaint volume per day from visibility, the usual band, the forecast, the warnings.

Days are UTC days received (the `ReceivedDay` search attribute, which a backdated
complaint keeps), so a series can be rebuilt from visibility at any time. The usual
band is the median day of the history before the last, give or take `band`
spreads; a spread is the days' median absolute deviation (scaled to a standard
deviation), but never less than the square root of the median: counts of
independent complaints vary by about that much when nothing has changed, and a
quiet category must not warn on one complaint more.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import statistics
import sys
from datetime import UTC, date, datetime, timedelta

from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.forecast import MODEL
from activities.rules.schema import Trends
from redress import search_attributes as sa
from redress.contract import WORKFLOW_TYPE
from redress.trends import Dimension, TrendReport, TrendSeries

QUEUE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")  # a task queue name we put into a visibility query
MIN_HISTORY = 7  # counted days before anything is judged
MAX_SERIES = 300  # the busiest series watched: the report stays far below Temporal's 2 MB payload limit
BY = {"category": sa.CATEGORY, "product": sa.PRODUCT}


async def watch(client: Client, task_queue: str, trends: Trends, at: datetime, rule_version: str) -> TrendReport:
    """Count, assess and forecast the watched series for the days up to yesterday (UTC).

    Only days the deployment counted are read: before the first day any complaint carried `ReceivedDay`
    (cases that began before it existed never get it), a zero means "not counted", not "none". That first
    day is partly counted, so the history starts the day after; with fewer than MIN_HISTORY days of it,
    nothing is judged yet. At most MAX_SERIES series are watched, the busiest first.
    """
    last = at.astimezone(UTC).date() - timedelta(days=1)
    days = [last - timedelta(days=back) for back in range(trends.history_days - 1, -1, -1)]
    counts = await volumes(client, task_queue, days, trends.by)
    begins = history_start(counts, len(days))
    report = TrendReport(ran_at=at, day=last, rule_version=rule_version, notify=trends.notify, model=MODEL)
    if begins is None:
        report.note = (
            "warming up: complaints are counted by the day they were received since this version; "
            f"warnings start once {MIN_HISTORY} full days are counted"
        )
        return report
    trimmed = {key: series[begins:] for key, series in counts.items()}
    busiest = sorted(
        (key for key, series in trimmed.items() if sum(series) >= trends.min_cases),
        key=lambda key: (-sum(trimmed[key]), key),
    )[:MAX_SERIES]
    watched = {key: trimmed[key] for key in sorted(busiest)}
    predicted = await forecasts(list(watched.values()), trends.horizon_days)
    report.series = [
        assess(by, name, series, forecast, trends.band, last)
        for ((by, name), series), forecast in zip(watched.items(), predicted, strict=True)
    ]
    report.not_watched = len(counts) - len(watched)
    return report


def history_start(counts: dict[tuple[Dimension, str], list[int]], length: int) -> int | None:
    """Where the counted days begin, or None with fewer than MIN_HISTORY of them.

    The first day with any complaint counted at all may be the day counting began (partly counted):
    the history then starts the day after it. Zeros before it mean "not counted", not "none".
    """
    counted = [day for day in range(length) if any(series[day] for series in counts.values())]
    begins = 0 if counted and counted[0] == 0 else (counted[0] + 1 if counted else length)
    return begins if length - begins >= MIN_HISTORY else None


async def volumes(
    client: Client, task_queue: str, days: list[date], by: list[Dimension]
) -> dict[tuple[Dimension, str], list[int]]:
    """Complaints per day received, per category and per product, of the cases on this task queue.

    A case counts once, whatever runs visibility lists for it (a reset case has two).
    """
    if not QUEUE_NAME.match(task_queue):
        raise ApplicationError(f"task queue {task_queue!r} is not a plain name", non_retryable=True)
    index = {day.isoformat(): position for position, day in enumerate(days)}
    listed = ", ".join(f"'{day}'" for day in index)
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = '{task_queue}' AND {sa.RECEIVED_DAY.name} IN ({listed})"
    counts: dict[tuple[Dimension, str], list[int]] = {}
    seen: set[str] = set()
    async for execution in client.list_workflows(query, page_size=1000):
        attributes = execution.typed_search_attributes
        position = index.get(attributes.get(sa.RECEIVED_DAY) or "")
        if position is None or execution.id in seen:
            continue
        seen.add(execution.id)
        for dimension in dict.fromkeys(by):
            name = attributes.get(BY[dimension])
            if name:
                counts.setdefault((dimension, name), [0] * len(days))[position] += 1
    return counts


async def forecasts(series: list[list[int]], horizon: int) -> list[list[float] | None]:
    """The forecast of each series, from the child process (activities/forecast.py says why a child)."""
    if not series:
        return []
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "activities.forecast",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await child.communicate(json.dumps({"horizon": horizon, "series": series}).encode())
    if child.returncode != 0:
        raise RuntimeError(f"the forecast failed ({child.returncode}): {err.decode(errors='replace')[-500:]}")
    answer: list[list[float] | None] = json.loads(out)
    return answer


def usual_band(history: list[int], band: float) -> tuple[float, float, float]:
    """The usual day (median) and the band around it, from the days before the one judged."""
    median = float(statistics.median(history))
    deviation = float(statistics.median(abs(day - median) for day in history))
    spread = max(1.4826 * deviation, math.sqrt(median), 1.0)
    return median, max(0.0, median - band * spread), median + band * spread


def assess(by: str, name: str, days: list[int], forecast: list[float] | None, band: float, last: date) -> TrendSeries:
    """Yesterday against the usual band, then the forecast against its upper edge (a peak ahead)."""
    median, low, high = usual_band(days[:-1], band)
    yesterday = days[-1]
    series = TrendSeries(
        by=by, name=name, days=days, median=median, low=round(low, 1), high=round(high, 1), forecast=forecast or []
    )
    usual = f"usually {median:g} a day (band {low:.1f} to {high:.1f})"
    if yesterday > high:
        series.signal, series.reason = "above_band", f"{yesterday} complaints on {last}, {usual}"
    elif forecast and max(forecast) > high and yesterday > median:  # a rise under way, not an incident over
        peak = max(forecast)
        when = last + timedelta(days=forecast.index(peak) + 1)
        series.signal, series.reason = "peak_ahead", f"forecast {peak:.1f} complaints on {when}, {usual}"
    elif yesterday < low:
        series.signal, series.reason = (
            "below_band",
            f"only {yesterday} complaints on {last}, {usual}: is intake working?",
        )
    return series
