"""The trend watch: a Temporal Schedule runs it; it counts complaints per day from visibility, forecasts, warns.

The server test crafts a volume series with backdated complaints (a complaint keeps the
day it was received on, `ReceivedDay`), lets the Schedule start the watch, and reads
what it told the cs_manager role; the band and forecast are checked on series made here,
with the real forecast process (statsmodels).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta

import httpx
import pytest

from activities.rules.loader import RulesInvalid, load_rules
from activities.trends import assess, forecasts, history_start, usual_band
from redress import report, trends
from redress.contract import WORKFLOW_TYPE
from redress.trends import Dimension
from tests.helpers.browser import console
from tests.helpers.cases import complaint, eventually
from tests.helpers.processes import redress_cli
from tests.helpers.rules import write_rules
from tests.test_console_safety import HEADER

DAY = date(2026, 11, 30)


async def test_a_day_above_the_band_and_a_rise_the_forecast_carries_above_it_both_warn():
    spike, rise, flat, drop = (
        [3] * 13 + [12],
        [10] * 20 + [12, 14, 16, 18],
        [4, 5, 3, 4, 6, 4, 5, 4, 3, 5],
        [16] * 13 + [0],
    )
    predicted = await forecasts([spike, rise, flat, drop], horizon=3)
    judged = {
        name: assess("category", name, days, forecast, 3.0, DAY)
        for (name, days), forecast in zip(
            {"spike": spike, "rise": rise, "flat": flat, "drop": drop}.items(), predicted, strict=True
        )
    }
    assert judged["spike"].signal == "above_band" and "12 complaints on 2026-11-30" in str(judged["spike"].reason)
    # 18 yesterday is still within 10 give or take 3 x sqrt(10), but the damped trend carries it above
    assert rise_forecast_above(judged["rise"]) and judged["rise"].signal == "peak_ahead"
    assert "forecast" in str(judged["rise"].reason) and "2026-12-0" in str(judged["rise"].reason)
    assert judged["flat"].signal == "usual" and len(judged["flat"].forecast) == 3
    assert judged["drop"].signal == "below_band" and "intake" in str(judged["drop"].reason)


async def test_a_one_day_incident_that_is_over_forecasts_no_peak():
    over = [2] * 12 + [60, 2]
    [forecast] = await forecasts([over], horizon=3)
    assert forecast is not None and max(forecast) > usual_band(over[:-1], 3.0)[2]  # the model still leans up
    assert assess("category", "x", over, forecast, 3.0, DAY).signal == "usual"  # but yesterday was usual


def test_days_before_counting_began_are_not_read_as_quiet_days():
    started: dict[tuple[Dimension, str], list[int]] = {
        ("category", "billing"): [0, 0, 0, 1] + [2] * 10,
        ("category", "other"): [0, 0, 0, 0] + [1] * 10,
    }
    assert history_start(started, 14) == 4  # the first counted day (3) is partial: from the day after
    assert history_start({("category", "billing"): [0] * 8 + [2] * 6}, 14) is None  # 5 full days: warming up
    assert history_start({("category", "billing"): [1] * 14}, 14) == 0  # counted from the window's start
    assert history_start({}, 14) is None


def test_trend_rules_that_would_mislead_are_refused(tmp_path):
    rules = write_rules(tmp_path / "rules")
    path = rules / "across_cases.yaml"
    shipped = path.read_text(encoding="utf-8")
    for bad, expected in (
        ('  at: "07:00"', '"HH:MM"'),  # replaced by a number: read as seconds otherwise
        ("  by: [category, product]", "at most once"),
        ("  notify: cs_manager", "unknown role 'nobody_here'"),
    ):
        edited = {
            '  at: "07:00"': "  at: 30",
            "  by: [category, product]": "  by: [category, category]",
            "  notify: cs_manager": "  notify: nobody_here",
        }[bad]
        path.write_text(shipped.replace(bad, edited), encoding="utf-8")
        with pytest.raises(RulesInvalid) as invalid:
            load_rules(rules)
        [error] = invalid.value.errors
        assert expected in error.message and error.file.endswith("across_cases.yaml") and error.line > 1


def rise_forecast_above(series: trends.TrendSeries) -> bool:
    return series.days[-1] <= series.high < max(series.forecast)


def test_the_usual_band_is_never_narrower_than_counting_noise():
    assert usual_band([0] * 10, 3.0) == (0.0, 0.0, 3.0)  # one complaint in a quiet category is no trend
    median, low, high = usual_band([100] * 10, 3.0)
    assert (median, low, high) == (100.0, 70.0, 130.0)  # sqrt(100) = 10 per spread
    assert usual_band([2, 8, 2, 8, 2, 8], 1.0)[2] > 5 + 1.4826 * 3 - 0.01


def trend_rules(tmp_path):
    """Ten days of history, watched from five complaints; deadlines far off (the cases are backdated)."""
    rules = write_rules(tmp_path / "rules", first_response="90d", resolution="90d", survey_window="90d")
    path = rules / "across_cases.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("  history_days: 28", "  history_days: 10").replace("  min_cases: 10", "  min_cases: 5")
    path.write_text(text, encoding="utf-8")
    return rules


async def test_the_schedule_runs_the_watch_which_warns_about_a_crafted_spike_and_report_shows_it(
    run_worker, peer, tmp_path, env
):
    today = datetime.now(UTC).date()
    billing, delivery = f"KETTLE-{uuid.uuid4().hex[:6]}", f"LAMP-{uuid.uuid4().hex[:6]}"
    crafted = []  # billing: 2 a day, then 9 yesterday; delivery: 1 a day throughout
    for back in range(1, 11):
        day = today - timedelta(days=back)
        for n in range(9 if back == 1 else 2):
            crafted.append((day, n, "订单重复扣费，请退款。", billing))
        crafted.append((day, 20, "My parcel is late and the tracking has not moved.", delivery))
    crafted.append((today, -1, "订单重复扣费，请退款。", billing))  # today is not counted: not a full day yet

    rules = trend_rules(tmp_path)
    async with run_worker(rules=rules) as redress:
        queue = redress.task_queue

        async def submit(day: date, n: int, text: str, sku: str) -> None:
            at = datetime.now(UTC) - timedelta(minutes=1) if n < 0 else datetime.combine(day, time(1, n), tzinfo=UTC)
            order = {"id": f"SO-{uuid.uuid4().hex[:6]}", "value": "99", "currency": "CNY", "product_sku": sku}
            await redress.submit(complaint(received_at=at.isoformat(), text=text, order=order))

        for batch in range(0, len(crafted), 8):  # a few at a time: the test server's two cores are shared
            await asyncio.gather(*(submit(*case) for case in crafted[batch : batch + 8]))

        async def all_visible() -> bool:
            query = f"WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = '{queue}' AND Category IS NOT NULL"
            return (await redress.client.count_workflows(query)).count == len(crafted)

        await eventually(all_visible, timeout=60)
        never = await redress_cli(env, "--task-queue", queue, "trends")  # no schedule yet: nothing has run
        await trends.ensure_schedule(redress.client, queue, time(7, 0), "Asia/Shanghai")
        not_yet = await redress_cli(env, "--task-queue", queue, "trends")  # reading starts no run
        ran = await redress_cli(env, "--task-queue", queue, "trends", "--run")  # the Schedule starts it, as daily
        watch = await trends.last_report(redress.client, queue)
        assert watch is not None

        async def warnings_sent() -> list:
            return peer.acted("/notify", template="trend_warning")

        told = await eventually(warnings_sent)
        last = await trends.last_report(redress.client, queue)
        code, out, err = await redress_cli(env, "--task-queue", queue, "trends")
        junk = await redress.client.execute_workflow(  # anyone may start one, with any arguments: it just runs
            trends.TREND_WORKFLOW_TYPE, args=[1, "two", {"three": [3]}], id=f"junk-{queue}", task_queue=queue
        )
        schedule = redress.client.get_schedule_handle(trends.schedule_id(queue))
        await schedule.pause(note="incident review")
        await trends.ensure_schedule(redress.client, queue, time(8, 30), "Asia/Shanghai")  # a worker restarts
        kept = (await schedule.describe()).schedule
        async with (
            console(redress, rules, trusted_header=HEADER) as url,
            httpx.AsyncClient(base_url=url, headers={HEADER: "zhang.wei"}) as http,
        ):
            page = (await http.get("/report", params={"since": "30d", "raw": "1"})).text  # the console's report
        await trends.ensure_schedule(redress.client, queue, None)  # rules without `trends:`: no schedule
        gone = await trends.last_report(redress.client, queue)

    series = {s.label: s for s in watch.series}
    assert watch.day == today - timedelta(days=1)
    assert series["category billing"].days == [2] * 9 + [9]
    assert series[f"product {billing}"].days == [2] * 9 + [9]
    assert series["category delivery"].days == [1] * 10 and series["category delivery"].signal == "usual"
    warned = {s.label for s in watch.warnings()}
    assert warned == {"category billing", f"product {billing}"}
    mine = [r for r in told if "billing" in r.body["text"] or billing in r.body["text"]]
    assert {r.body["role"] for r in mine} == {"cs_manager"} and len(mine) == 2
    assert all(billing not in r.body["complaint_id"] for r in mine)  # what logs show names no product
    assert "9 complaints on" in mine[0].body["text"]
    assert last == watch
    assert code == 0, err
    assert "category billing" in out and "above_band" in out
    assert never[0] == 0 and "has not run yet" in never[1] and "has not run yet" in not_yet[1]
    assert ran[0] == 0 and "category billing" in ran[1]
    assert len(junk["series"]) == len(watch.series)
    assert kept.state.paused and kept.state.note == "incident review"  # the operator's pause survives
    assert kept.spec.calendars[0].hour[0].start == 8 and kept.spec.calendars[0].minute[0].start == 30
    assert gone is None
    assert "Trend watch for" in page and "category billing" in page and "above_band" in page
    summary = report.summarize([], trends=watch)
    assert "category billing" in report.render_html(summary) and "trend_above_band" in report.render_csv(summary)
