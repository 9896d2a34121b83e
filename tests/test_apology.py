"""Who apologises: an apology goes out in the name of the role the rules choose (apology_by), in its words.

The shipped rules name a senior manager for major cases and for customers in
regions where a senior person's apology is what counts, the customer-service team
for everyone else (rules/remedies.yaml, templates apology.<role>).
"""

from __future__ import annotations

import shutil
import uuid
from decimal import Decimal

import pytest

from activities.io import TriageFacts
from activities.rules import RulesInvalid, load_rules
from activities.rules.engine import triage
from redress.contract import ComplaintInput, RemedyProposal
from tests.helpers.cases import complaint, eventually, notices, open_case, stage_is
from tests.helpers.processes import ROOT
from tests.helpers.rules import APPROVER_KEYS


async def apologise(redress, peer, cid: str) -> dict:
    """Propose an apology (signed by li.na, nothing to pay beyond her authority), wait for its notice."""
    apology = RemedyProposal(kind="apology", amount=Decimal("0"), currency="CNY", reason="sorry", proposed_by="li.na")
    await redress.propose(cid, apology, APPROVER_KEYS["li.na"])
    await stage_is(redress, cid, "remedy_executed")
    sent = await eventually(lambda: _apology_notices(peer, cid))
    assert len(sent) == 1, sent  # one apology, not also the generic "we have arranged" message
    return sent[0].body


async def _apology_notices(peer, cid: str) -> list:
    return [
        n
        for template in ("apology.senior_manager", "apology.customer_service", "remedy_executed")
        for n in await notices(peer, cid, template)
    ]


async def test_a_major_case_is_apologised_for_by_a_senior_manager_in_the_customers_language(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na", text="电水壶爆炸，把我的手烫伤了，我受伤了。")
        status = await redress.status(cid)
        assert status.severity.value == "major" and status.apology_by == "senior_manager"
        body = await apologise(redress, peer, cid)
    assert body["template"] == "apology.senior_manager" and body["language"] == "zh"
    assert "高级经理" in body["text"] and cid in body["text"]


async def test_a_customer_in_a_high_power_distance_region_hears_from_a_senior_manager(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(
            redress,
            respond_as="li.na",
            text="Delivery is two days late.",
            customer={"id": f"jp-{uuid.uuid4().hex[:8]}", "language": "ja"},
            metadata={"region": "jp"},
        )
        assert (await redress.status(cid)).severity.value == "general"
        body = await apologise(redress, peer, cid)
    assert body["template"] == "apology.senior_manager" and body["language"] == "ja"
    assert "シニアマネージャー" in body["text"]


async def test_everyone_else_hears_from_the_customer_service_team(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(
            redress,
            respond_as="li.na",
            text="Delivery is two days late.",
            customer={"id": f"en-{uuid.uuid4().hex[:8]}", "language": "en"},
        )
        body = await apologise(redress, peer, cid)
    assert body["template"] == "apology.customer_service" and body["language"] == "en"
    assert body["text"].endswith("- Customer Service") and "we are sorry" in body["text"]


def test_a_role_named_to_apologise_needs_its_words(tmp_path):
    """A role in apology_by without a template apology.<role> is refused with where it is named."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    text = (rules / "remedies.yaml").read_text(encoding="utf-8")
    (rules / "remedies.yaml").write_text(text.replace("role: customer_service", "role: ceo"), encoding="utf-8")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    [error] = refused.value.errors
    assert error.path == "apology_by.2.role" and "no template 'apology.ceo'" in error.message
    assert error.file.endswith("remedies.yaml") and error.line > 1


def test_explain_says_which_rule_chose_who_apologises():
    rules = load_rules(ROOT / "rules")
    facts = TriageFacts.of(ComplaintInput.model_validate(complaint(text="Late again.", metadata={"region": " KR "})))
    explained = triage(rules, facts)
    said = [(r.rule, r.fired, r.reason) for r in explained.rules if r.rule.startswith("apology_by:")]
    assert said[0] == ("apology_by:senior_manager", False, "does not match: severity in major")
    assert said[1][1] and said[1][2].startswith("matches: metadata.region in cn, hk") and len(said) == 2
    assert explained.apology_by == "senior_manager" == triage(rules, facts, explain=False).apology_by
