"""While a case is open the customer hears from us at least every N: each contact starts a new period."""

from __future__ import annotations

import asyncio

from redress import search_attributes as sa
from redress.contract import Resolution, ResponseRecord
from tests.helpers.cases import complaint, eventually, notices, stage_is
from tests.helpers.rules import write_rules

TIERS = """
tiers:
  general:
    first_response: 60s
    resolution: 120s
    next_update: 3s
    escalate_to: team_lead
    escalation:
      next_update:
        - {after: 0s, notify: team_lead}
  urgent: {first_response: 60s, resolution: 60s, escalate_to: cs_manager}
  major: {first_response: 60s, resolution: 60s, escalate_to: director}
follow_up: {survey_window: 60s, reopen_below: 3}
"""


async def test_each_contact_restarts_the_period_and_silence_escalates(run_worker, peer, tmp_path):
    async with run_worker(rules=write_rules(tmp_path / "r", tiers_yaml=TIERS)) as redress:
        data = complaint(text="just a question about my order")
        cid = data["complaint_id"]
        await redress.submit(data)
        acknowledged = (await stage_is(redress, cid, "acknowledged")).deadlines["next_update"].due

        await asyncio.sleep(1.5)
        status = await redress.record_response(cid, ResponseRecord(agent="li.na", message="Looking into it"))
        restarted = status.deadlines["next_update"].due
        assert (restarted - acknowledged).total_seconds() > 1.2  # the contact moved it

        sent = await eventually(lambda: notices(peer, cid, "escalation"), timeout=10)
        assert sent[0].body["role"] == "team_lead" and "next_update" in sent[0].body["text"]
        missed = next(e for e in await redress.timeline(cid) if e.kind == "deadline_missed")
        assert missed.at >= restarted

        status = await redress.record_response(cid, ResponseRecord(agent="li.na", message="Found it"))
        fresh = status.deadlines["next_update"]
        assert fresh.breached_at is None and fresh.due > restarted
        attributes = (await redress.handle(cid).describe()).typed_search_attributes
        assert attributes.get(sa.NEXT_UPDATE_DUE) == fresh.due

        await redress.resolve(
            cid, Resolution(agent="li.na", summary="answered", root_cause="customer_misunderstanding")
        )
        await asyncio.sleep(4)  # past the period: resolved cases owe no updates
        status = await redress.status(cid)
    assert status.deadlines["next_update"].met_at is not None
    assert len(peer.acted("/notify", complaint_id=cid, template="escalation")) == 1
    assert status.escalation_level == 1
