"""Team clocks (OLA, issue 21): a queue's own deadline for a case handed to it, with its own chain inside the team,
apart from the customer's deadlines.

Logistics owes an answer within 3 s here; its warning goes to the team lead, and a second after the miss the
case goes to the quality queue (whose clock then starts), while the customer's first response is an hour off.
"""

from __future__ import annotations

import asyncio

from redress import search_attributes as sa
from redress.contract import ResponseRecord
from redress.report import CaseRecord, summarize
from tests.helpers.cases import eventually, open_case
from tests.helpers.rules import write_rules

CUSTOMER_HOUR = """tiers:
  general: {first_response: 1h, resolution: 2h, escalate_to: team_lead}
  urgent: {first_response: 1h, resolution: 2h, escalate_to: cs_manager}
  major: {first_response: 1h, resolution: 2h, escalate_to: director}
follow_up: {survey_window: 20s, reopen_below: 3}
"""  # the customer's deadlines an hour off: only team clocks fire within a test
TIERS = (
    CUSTOMER_HOUR
    + """ola:
  logistics:
    within: 3s
    escalation:
      - {after: -1s, notify: team_lead}
      - {after: 1s, notify: cs_manager, reassign: quality}
  quality:
    within: 1h
"""
)


async def test_a_team_clock_escalates_inside_the_team_while_the_customers_deadline_is_still_met(
    run_worker, peer, tmp_path
):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=TIERS)) as redress:
        cid = await open_case(redress, text="The parcel arrived smashed and the kettle is broken.")
        status = await redress.status(cid)
        assert status.queue == "logistics" and "ola:logistics" in status.deadlines

        async def handed_on():
            moved = await redress.status(cid)
            return moved if "ola:quality" in moved.deadlines else None

        moved = await eventually(handed_on, timeout=20)
        attributes = await eventually(lambda: _team_breached(redress, cid))
        sent = [
            (r.body["template"], r.body["role"], "ola:logistics" in r.body["text"])
            for r in peer.acted("/notify", complaint_id=cid)
            if r.body["audience"] == "staff"
        ]
        await redress.record_response(cid, ResponseRecord(agent="li.na", message="on it"))
        answered = await redress.status(cid)
        timeline = await redress.timeline(cid)

    logistics, customer = moved.deadlines["ola:logistics"], moved.deadlines["first_response"]
    assert logistics.breached_at is not None and logistics.met_at is not None  # missed, then handed on
    assert customer.breached_at is None and customer.met_at is None and customer.due > logistics.breached_at
    assert moved.queue == "quality" and moved.escalation_level == 0 and moved.severity == status.severity
    assert ("deadline_warning", "team_lead", True) in sent and ("escalation", "cs_manager", True) in sent
    assert attributes.get(sa.TEAM_BREACHED) is True and attributes.get(sa.BREACHED) is None
    assert attributes.get(sa.TEAM_DUE) == int(moved.deadlines["ola:quality"].due.timestamp())
    # the answer meets the new team's clock and the customer's first response together
    assert answered.deadlines["ola:quality"].met_at is not None and answered.deadlines["first_response"].met_at
    kinds = [e.kind for e in timeline]
    assert "team_clock_handed_on" in kinds and "team_clock" in kinds


async def _team_breached(redress, cid: str):
    attributes = (await redress.handle(cid).describe()).typed_search_attributes
    return attributes if attributes.get(sa.TEAM_BREACHED) and attributes.get(sa.TEAM_DUE) else None


PING_PONG = (
    CUSTOMER_HOUR
    + """ola:
  logistics: {within: 1s, escalation: [{after: 0s, reassign: quality}]}
  quality: {within: 1s, escalation: [{after: 0s, reassign: logistics}]}
"""
)


async def test_a_teams_clock_runs_once_so_two_teams_cannot_pass_a_case_back_and_forth(run_worker, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=PING_PONG)) as redress:
        cid = await open_case(redress, text="The parcel arrived smashed and the kettle is broken.")

        async def back_with_logistics():
            status = await redress.status(cid)
            quality = status.deadlines.get("ola:quality")
            back = status.queue == "logistics" and quality is not None and quality.breached_at is not None
            return status if back else None

        await eventually(back_with_logistics, timeout=20)
        await asyncio.sleep(2.5)  # a restarted logistics clock would have been missed by now
        status = await redress.status(cid)
        kinds = [e.kind for e in await redress.timeline(cid)]
    assert status.queue == "logistics" and sorted(n for n in status.deadlines if n.startswith("ola:")) == [
        "ola:logistics",
        "ola:quality",
    ]
    assert kinds.count("team_clock") == 1 and kinds.count("deadline_missed") == 2  # quality's start; two misses


def test_the_report_gives_each_teams_own_breach_rate():
    def case(n: int, clocks: list[str], missed: list[str]) -> CaseRecord:
        return CaseRecord(
            complaint_id=f"c{n}", started_at="2026-12-01T00:00:00Z", result="closed", severity="general",
            team_clocks=clocks, team_breaches=missed,
        )  # fmt: skip

    report = summarize([case(1, ["logistics"], ["logistics"]), case(2, ["logistics", "quality"], []), case(3, [], [])])
    assert report["team_clocks"] == [
        {"team": "logistics", "cases": 2, "breached": 1, "breach_rate": 0.5},
        {"team": "quality", "cases": 1, "breached": 0, "breach_rate": 0.0},
    ]
    assert report["overall"]["breach_rate"] == 0.0  # the customer's deadlines: none missed


def test_a_team_clock_for_a_queue_nothing_routes_to_is_a_warning_with_its_place(tmp_path):
    """A misspelt queue under `ola:` loads (the engine keeps running) but `rules check` says where it is."""
    from activities.rules.loader import load_rules
    from tests.helpers.rules import write_rules

    rules = write_rules(tmp_path / "rules", tiers_yaml=TIERS.replace("  logistics:", "  logistcs:"))
    [warning] = [w for w in load_rules(rules).warnings if "logistcs" in w.message]
    assert warning.file.endswith("tiers.yaml") and warning.line > 1 and "never runs" in warning.message
    assert not [w for w in load_rules(write_rules(tmp_path / "ok", tiers_yaml=TIERS)).warnings if "ola" in w.path]
