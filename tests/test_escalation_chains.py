"""Escalation chains on the real server: warnings, levels in order, recompute on severity change."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest

from redress import search_attributes as sa
from redress.client import Refused
from redress.contract import ResponseRecord, SeverityChange
from tests.helpers.cases import complaint, eventually, notices, stage_is
from tests.helpers.rules import write_rules

CHAIN = """
tiers:
  general:
    first_response: 4s
    resolution: 120s
    escalate_to: team_lead
    escalation:
      first_response:
        - {after: -2s, notify: team_lead}
        - {after: 0s, notify: team_lead}
        - {after: 2s, notify: cs_manager, reassign: escalations, page: zhang.wei}
  urgent: {first_response: 120s, resolution: 120s, escalate_to: cs_manager}
  major: {first_response: 120s, resolution: 120s, escalate_to: director}
follow_up: {survey_window: 60s, reopen_below: 3}
"""


async def staff_sent(peer, cid):
    return [
        (r.body["template"], r.body["role"], r.body.get("person"))
        for r in peer.acted("/notify", complaint_id=cid)
        if r.body["audience"] == "staff"
    ]


async def test_warning_then_breach_then_levels_in_order(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=CHAIN)) as redress:
        data = complaint(text="just a question about my order")
        cid = data["complaint_id"]
        await redress.submit(data)

        async def two_levels():
            return (await redress.status(cid)).escalation_level == 2 or None

        await eventually(two_levels, timeout=20)
        status = await redress.status(cid)
        timeline = await redress.timeline(cid)
        attributes = (await redress.handle(cid).describe()).typed_search_attributes
        sent = await eventually(lambda: _all_sent(peer, cid, 4))
    kinds = [e.kind for e in timeline if e.kind in ("deadline_warning", "deadline_missed", "escalated")]
    assert kinds == ["deadline_warning", "deadline_missed", "escalated", "escalated"]
    due = status.deadlines["first_response"].due
    at = {e.kind + str(e.data.get("level", "")): e.at for e in timeline}
    assert at["deadline_warning"] < due <= at["deadline_missed"] <= at["escalated1"] < at["escalated2"]
    assert sent == [
        ("deadline_warning", "team_lead", None),
        ("escalation", "team_lead", None),
        ("escalation", "cs_manager", None),
        ("escalation", "page", "zhang.wei"),
    ]
    assert status.queue == "escalations" and status.deadlines["first_response"].fired == 4
    assert attributes.get(sa.BREACHED) is True and attributes.get(sa.QUEUE) == "escalations"
    assert attributes.get(sa.ESCALATION_LEVEL) == 2


async def _all_sent(peer, cid, count):
    sent = await staff_sent(peer, cid)
    return sent if len(sent) >= count else None


async def test_meeting_the_target_after_the_warning_stops_the_chain(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=CHAIN)) as redress:
        data = complaint(text="just a question about my order")
        cid = data["complaint_id"]
        await redress.submit(data)
        await eventually(lambda: notices(peer, cid, "deadline_warning"), timeout=10)
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
        await asyncio.sleep(5)  # past the deadline and the second level
        status = await redress.status(cid)
    assert status.escalation_level == 0 and status.deadlines["first_response"].breached_at is None
    assert [t for t, _, _ in await staff_sent(peer, cid)] == ["deadline_warning"]


RETIER = """
tiers:
  general: {first_response: 30s, resolution: 120s, escalate_to: team_lead}
  urgent:
    first_response: 30s
    resolution: 5s
    escalate_to: cs_manager
  major: {first_response: 3s, resolution: 120s, escalate_to: director}
follow_up: {survey_window: 60s, reopen_below: 3}
"""


async def test_severity_raised_mid_flight_recomputes_and_the_old_timer_never_fires(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=RETIER)) as redress:
        data = complaint(text="just a question about my order")
        cid = data["complaint_id"]
        await redress.submit(data)
        before = (await stage_is(redress, cid, "acknowledged")).deadlines["first_response"].due
        with pytest.raises(Refused, match="already general"):
            await redress.change_severity(cid, SeverityChange(severity="general", by="zhang.wei", reason="x"))
        status = await redress.change_severity(
            cid, SeverityChange(severity="major", by="zhang.wei", reason="customer is a journalist")
        )
        after = status.deadlines["first_response"].due
        assert status.severity.value == "major" and (before - after).total_seconds() == pytest.approx(27, abs=0.01)
        sent = await eventually(lambda: notices(peer, cid, "escalation"), timeout=10)
        assert sent[0].body["role"] == "director"
        events = await redress.timeline(cid)
        missed = next(e for e in events if e.kind == "deadline_missed")
        assert missed.at >= after and (missed.at - after).total_seconds() < 5
        changed = next(e for e in events if e.kind == "severity_changed")
        assert changed.actor == "supervisor:zhang.wei" and "general -> major" in changed.detail
        attributes = (await redress.handle(cid).describe()).typed_search_attributes
        assert attributes.get(sa.SEVERITY) == "major" and attributes.get(sa.FIRST_RESPONSE_DUE) == after
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
    assert len(peer.acted("/notify", complaint_id=cid, template="escalation")) == 1


RAISING = """
tiers:
  general:
    first_response: 2s
    resolution: 120s
    escalate_to: team_lead
    escalation:
      first_response:
        - {after: 0s, notify: team_lead, raise_severity: urgent}
  urgent: {first_response: 120s, resolution: 6s, escalate_to: cs_manager}
  major: {first_response: 120s, resolution: 120s, escalate_to: director}
follow_up: {survey_window: 60s, reopen_below: 3}
"""


async def test_an_escalation_step_that_raises_severity_retimes_the_other_deadline(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=RAISING)) as redress:
        data = complaint(text="just a question about my order")
        cid = data["complaint_id"]
        await redress.submit(data)

        async def resolution_missed():
            status = await redress.status(cid)
            resolution = status.deadlines.get("resolution")
            return status if resolution and resolution.breached_at else None

        status = await eventually(resolution_missed, timeout=20)
        sent = await eventually(lambda: _all_sent(peer, cid, 2))
    assert status.severity.value == "urgent" and status.escalation_level == 2
    assert sent == [("escalation", "team_lead", None), ("escalation", "cs_manager", None)]


async def test_supervisors_find_cases_about_to_breach_and_breached_ones(run_worker, env, tmp_path):
    from datetime import datetime, timedelta

    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=CHAIN)) as redress:
        data = complaint(text="just a question about my order")
        cid = data["complaint_id"]
        await redress.submit(data)
        soon = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        async def listed(query: str):
            return [w.id async for w in env.client.list_workflows(f"{query} AND WorkflowId = 'complaint-{cid}'")]

        assert await eventually(lambda: listed(f'FirstResponseDue < "{soon}"'))
        assert await eventually(lambda: listed("Breached = true"), timeout=20)
        assert await eventually(lambda: listed("EscalationLevel >= 2 AND Queue = 'escalations'"), timeout=20)
