"""Agent load: five intense complaints in a row earn a break prompt, and the next angry one goes elsewhere."""

from __future__ import annotations

import pytest

from activities.rules.sentiment import assess
from tests.helpers.cases import eventually, notices, open_case
from tests.helpers.rules import write_rules

FURIOUS_BILLING = "I am FURIOUS. You charged me twice, this is disgusting and pathetic!!! Refund me now."
CALM_BILLING = "I think I was charged twice for order 1001; could you check and refund one of them?"


@pytest.fixture
def desk_rules(tmp_path):
    rules = write_rules(tmp_path / "desk-rules", agent_desks=True)
    path = rules / "across_cases.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  break_after: 5\n  break_length: 15m\n" in text  # the shipped numbers the test relies on
    path.write_text(text.replace("  break_length: 15m", "  break_length: 1h"), encoding="utf-8")
    return rules


def test_the_texts_are_what_the_test_says():
    assert assess(FURIOUS_BILLING).anger >= 0.6 > assess(CALM_BILLING).anger


async def test_break_prompt_after_the_fifth_intense_case_and_the_next_angry_one_goes_elsewhere(
    run_worker, peer, desk_rules
):
    async with run_worker(rules=desk_rules) as redress:
        calm_first = await open_case(redress, text=CALM_BILLING)
        intense = [await open_case(redress, text=FURIOUS_BILLING) for _ in range(5)]
        assignees = [(await redress.status(cid)).assignee for cid in [calm_first, *intense]]
        assert assignees == ["li.na"] * 6

        prompts = await eventually(lambda: notices(peer, intense[-1], "agent_break"))
        assert len(prompts) == 1 and prompts[0].body["person"] == "li.na" and "5" in prompts[0].body["text"]
        assert [await notices(peer, cid, "agent_break") for cid in intense[:-1]] == [[]] * 4  # not before the fifth

        sixth = await open_case(redress, text=FURIOUS_BILLING)
        calm_after = await open_case(redress, text=CALM_BILLING)
        assert (await redress.status(sixth)).assignee == "sam.taylor"
        assert (await redress.status(calm_after)).assignee == "sam.taylor"  # li.na is on her break
        triaged = next(e for e in await redress.timeline(sixth) if e.kind == "assigned")
        assert "sam.taylor" in triaged.detail
