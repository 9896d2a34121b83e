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
from datetime import date, datetime, timedelta

from temporalio.client import Client

from activities.forecast import MODEL
from activities.rules.schema import Trends
from redress import search_attributes as sa
from redress.contract import WORKFLOW_TYPE
from redress.trends import Dimension, TrendReport, TrendSeries

QUEUE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")  # a task queue name we put into a visibility query
BY = {"category": sa.CATEGORY, "product": sa.PRODUCT}


async def watch(client: Client, task_queue: str, trends: Trends, at: datetime, rule_version: str) -> TrendReport:
    """Count, assess and forecast every watched series for the days up to yesterday (UTC)."""
    last = at.date() - timedelta(days=1)
    days = [last - timedelta(days=back) for back in range(trends.history_days - 1, -1, -1)]
    counts = await volumes(client, task_queue, days, trends.by)
    watched = {key: series for key, series in sorted(counts.items()) if sum(series) >= trends.min_cases}
    predicted = await forecasts(list(watched.values()), trends.horizon_days)
    return TrendReport(
        ran_at=at,
        day=last,
        rule_version=rule_version,
        notify=trends.notify,
        model=MODEL,
        series=[
            assess(by, name, series, forecast, trends.band, last)
            for ((by, name), series), forecast in zip(watched.items(), predicted, strict=True)
        ],
        not_watched=len(counts) - len(watched),
    )


async def volumes(
    client: Client, task_queue: str, days: list[date], by: list[Dimension]
) -> dict[tuple[Dimension, str], list[int]]:
    """Complaints per day received, per category and per product, of the cases on this task queue."""
    if not QUEUE_NAME.match(task_queue):
        raise ValueError(f"task queue {task_queue!r} is not a plain name")
    index = {day.isoformat(): position for position, day in enumerate(days)}
    listed = ", ".join(f"'{day}'" for day in index)
    query = f"WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = '{task_queue}' AND {sa.RECEIVED_DAY.name} IN ({listed})"
    counts: dict[tuple[Dimension, str], list[int]] = {}
    async for execution in client.list_workflows(query, page_size=1000):
        attributes = execution.typed_search_attributes
        position = index.get(attributes.get(sa.RECEIVED_DAY) or "")
        if position is None:
            continue
        for dimension in by:
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
    elif forecast and max(forecast) > high:
        peak = max(forecast)
        when = last + timedelta(days=forecast.index(peak) + 1)
        series.signal, series.reason = "peak_ahead", f"forecast {peak:.1f} complaints on {when}, {usual}"
    elif yesterday < low:
        series.signal, series.reason = (
            "below_band",
            f"only {yesterday} complaints on {last}, {usual}: is intake working?",
        )
    return series
