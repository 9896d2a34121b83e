"""Approver groups: above a threshold the rules ask several different people, each with a signed decision.

The shipped rules: cash above 2000 CNY needs a cs_manager (or above) and someone from finance
(liu.yang, a countersign role); refunds above 4000 CNY need two cs_managers or above.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from activities.rules.loader import RulesInvalid, load_rules
from redress import signatures
from redress.client import Refused
from redress.contract import RemedyProposal
from tests.helpers.browser import CHROMIUM, chromium, console, problem, register_and_sign_in, screenshot
from tests.helpers.cases import eventually, notices, open_case
from tests.helpers.rules import APPROVER_KEYS, write_rules


async def propose(redress, kind: str, amount: str) -> str:
    cid = await open_case(redress, respond_as="li.na")
    answer = await redress.propose_remedy(
        cid,
        RemedyProposal(kind=kind, amount=Decimal(amount), currency="CNY", reason="ruined wedding", proposed_by="li.na"),
    )
    assert answer.status.value == "awaiting_approval"
    return cid


async def refusal(call) -> str:
    with pytest.raises(Refused) as refused:
        await call
    return str(refused.value)


async def paid(redress, cid):
    status = await redress.status(cid)
    return status if status.remedies[0].status.value == "executed" else None


async def test_cash_above_the_threshold_needs_a_manager_and_finance_each_signing_once(run_worker, peer):
    async with run_worker() as redress:
        cid = await propose(redress, "cash", "3000")
        status = await redress.status(cid)
        group = status.pending_approval.group
        assert group.name == "large-cash" and [s.role for s in group.seats] == ["cs_manager", "finance"]
        assert set(status.pending_approval.eligible_approvers) == {"zhang.wei", "chen.jing", "liu.yang"}

        first = await redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])
        assert first.status.value == "awaiting_approval"  # one seat of two: nothing is paid yet
        assert peer.acted("/pay", complaint_id=cid) == []
        await asyncio.sleep(1.1)  # a new signature (signed_at is in seconds), so it is not refused as a replay
        refused = {
            "again": await refusal(redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])),
            "seat filled": await refusal(redress.approve(cid, "chen.jing", APPROVER_KEYS["chen.jing"])),
            "below": await refusal(redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])),
            "proposer": await refusal(redress.approve(cid, "li.na", APPROVER_KEYS["li.na"])),
            # finance's name, signed with the manager's key: a name is never proof
            "forged": await refusal(redress.approve(cid, "liu.yang", APPROVER_KEYS["zhang.wei"])),
        }
        assert "four eyes" in refused["again"] and "already signed" in refused["again"]
        assert "may fill no open seat" in refused["seat filled"] and "finance" in refused["seat filled"]
        assert "may fill no open seat" in refused["below"]
        assert "four eyes" in refused["proposer"]
        assert "forged" in refused["forged"]
        waiting = await redress.status(cid)
        assert waiting.pending_approval.needs() == "group large-cash: finance (zhang.wei signed)"
        assert waiting.pending_approval.eligible_approvers == ["liu.yang"]

        last = await redress.approve(cid, "liu.yang", APPROVER_KEYS["liu.yang"])
        assert last.status.value == "approved"
        done = await eventually(lambda: paid(redress, cid))
        events = await redress.timeline(cid)
    [payment] = peer.acted("/pay", complaint_id=cid)
    assert payment.body["amount"] == "3000"
    [seat] = [e for e in events if e.kind == "remedy_signed"]
    assert seat.actor == "approver:zhang.wei" and seat.data["seat"] == "cs_manager"
    [approved] = [e for e in events if e.kind == "remedy_approved"]
    assert approved.actor == "approver:liu.yang" and "large-cash (zhang.wei, liu.yang)" in approved.detail
    assert approved.data["role"] == "finance"
    [record] = done.remedies
    assert [s.approved_by for s in record.group.seats] == [["zhang.wei"], ["liu.yang"]]
    asked = {r.body["role"] for r in peer.acted("/notify", complaint_id=cid, template="approval_needed")}
    assert asked == {"cs_manager", "finance"}


async def test_one_rejection_ends_a_group_approval(run_worker, peer):
    async with run_worker() as redress:
        cid = await propose(redress, "refund", "4500")
        pending = (await redress.status(cid)).pending_approval
        assert pending.group.name == "large-refund" and pending.group.describe() == "cs_manager + cs_manager"
        await redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])
        rejected = await redress.reject(cid, "chen.jing", APPROVER_KEYS["chen.jing"], note="too much")
        status = await redress.status(cid)
        events = await redress.timeline(cid)
        late = await refusal(redress.approve(cid, "chen.jing", APPROVER_KEYS["chen.jing"]))
    assert rejected.status.value == "rejected" and rejected.decided_by == "chen.jing"
    assert status.stage.value == "in_progress" and status.pending_approval is None
    assert [e.actor for e in events if e.kind == "remedy_rejected"] == ["approver:chen.jing"]
    assert "no remedy awaits approval" in late
    assert peer.acted("/pay", complaint_id=cid) == []


async def test_a_proposer_who_could_grant_it_alone_still_needs_the_group(run_worker, peer):
    """zhang.wei's own limit covers 3000 CNY of cash; the group's rule still asks finance as well."""
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="zhang.wei")
        proposal = RemedyProposal(
            kind="cash", amount=Decimal("3000"), currency="CNY", reason="wedding", proposed_by="zhang.wei"
        )
        signed_proposal = await redress.sign_proposal(cid, proposal, APPROVER_KEYS["zhang.wei"])
        answer = await redress.propose_remedy(cid, signed_proposal)
        pending = (await redress.status(cid)).pending_approval
    assert answer.status.value == "awaiting_approval"
    assert [s.eligible for s in pending.group.seats] == [["chen.jing"], ["liu.yang"]]  # never the proposer
    assert peer.acted("/pay", complaint_id=cid) == []


def rules_with_timeout(tmp_path):
    rules = write_rules(tmp_path / "r")
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  free_kinds: [apology, explanation]", "  free_kinds: [apology, explanation]\n  decision_timeout: 2s"
    )
    (rules / "approval.yaml").write_text(text, encoding="utf-8")
    return rules


async def test_each_missing_seat_climbs_on_its_own_and_a_group_is_never_approved_by_a_timeout(
    run_worker, peer, tmp_path
):
    async with run_worker(rules=rules_with_timeout(tmp_path)) as redress:
        climbs = await propose(redress, "cash", "3000")
        lapses = await propose(redress, "cash", "3000")
        await redress.approve(climbs, "liu.yang", APPROVER_KEYS["liu.yang"])  # finance signs at once

        async def escalated(cid):
            events = await redress.timeline(cid)
            return [e for e in events if e.kind == "approval_escalated"] or None

        [climbed] = await eventually(lambda: escalated(climbs), timeout=20)
        too_low = await refusal(redress.approve(climbs, "zhang.wei", APPROVER_KEYS["zhang.wei"]))
        await redress.approve(climbs, "chen.jing", APPROVER_KEYS["chen.jing"])
        await eventually(lambda: paid(redress, climbs))

        async def rejected(cid):
            status = await redress.status(cid)
            return status if status.remedies[0].status.value == "rejected" else None

        lapsed = await eventually(lambda: rejected(lapses), timeout=20)
        declined = await eventually(lambda: notices(peer, lapses, "remedy_declined"))
    assert (climbed.data["seat"], climbed.data["required_role"]) == ("cs_manager", "director")
    assert "may fill no open seat" in too_low
    assert len(peer.acted("/pay", complaint_id=climbs)) == 1
    assert lapsed.remedies[0].decided_by == "rules:approval-timeout" and lapsed.stage.value == "in_progress"
    assert declined and peer.acted("/pay", complaint_id=lapses) == []


def test_group_rules_that_cannot_work_are_refused_with_their_place(tmp_path):
    rules = write_rules(tmp_path / "r")
    path = rules / "approval.yaml"
    shipped = path.read_text(encoding="utf-8")
    cases = {
        "unknown role 'auditor'": shipped.replace("        - role: finance", "        - role: auditor"),
        "needs a ranked seat": shipped.replace("        - role: cs_manager\n", "        - {role: finance, count: 2}\n"),
        "two approvers or more": shipped.replace(
            "        - role: cs_manager\n        - role: finance\n", "        - role: cs_manager\n"
        ),
        "cost nothing": shipped.replace("      kinds: [cash]", "      kinds: [cash, apology]"),
        "valid integer": shipped.replace("{role: cs_manager, count: 2}", "{role: cs_manager, count: true}"),
        "a ranked role already": shipped.replace(
            "countersign_roles: [finance]", "countersign_roles: [finance, director]"
        ),
    }
    for expected, text in cases.items():
        assert text != shipped, expected
        path.write_text(text, encoding="utf-8")
        with pytest.raises(RulesInvalid) as invalid:
            load_rules(rules)
        [error] = [e for e in invalid.value.errors if expected in e.message]
        assert error.file.endswith("approval.yaml") and error.line > 1, error


@pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (.ci/run installs it)")
async def test_the_console_shows_the_seats_and_the_last_member_signs_with_a_passkey(run_worker, tmp_path, peer):
    rules = write_rules(tmp_path / "rules")
    async with run_worker(rules=rules) as redress, console(redress, rules) as url, chromium() as browser:
        cid = await propose(redress, "cash", "3000")
        await redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])

        lead = await register_and_sign_in(browser, url, "wang.fang")  # no seat of theirs
        await lead.goto(f"{url}/cases/{cid}")
        assert await lead.locator('button[data-sign="approve"]').count() == 0
        assert "group large-cash: finance (zhang.wei signed)" in await lead.locator("#not-yours").inner_text()

        finance = await register_and_sign_in(browser, url, "liu.yang")
        await finance.locator("#awaiting tr", has_text=cid).wait_for()  # their inbox lists it
        await finance.goto(f"{url}/cases/{cid}")
        seats = finance.locator("#seats")
        assert "zhang.wei" in await seats.locator("tr.filled").inner_text()
        assert "liu.yang" in await seats.locator("tr.open").inner_text()
        await screenshot(finance, "case-approver-group")
        await finance.locator('button[data-sign="approve"]').click()
        assert "P1: approved by liu.yang" in await problem(finance)
        await eventually(lambda: paid(redress, cid))
        await finance.locator('#remedies tr[data-proposal="P1"] .decided-by', has_text="zhang.wei, liu.yang").wait_for()
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


def with_delegation(tmp_path, absent: str, delegate: str):
    rules = write_rules(tmp_path / "rules")
    today = datetime.now(UTC).date()
    with (rules / "approval.yaml").open("a", encoding="utf-8") as out:
        out.write(
            f"\ndelegations:\n  - {{absent: {absent}, delegate: {delegate}, since: {today - timedelta(days=1)}, "
            f"until: {today + timedelta(days=5)}}}\n"
        )
    return rules


async def test_one_persons_authority_fills_one_seat_whether_they_sign_or_their_delegate_does(
    run_worker, peer, tmp_path
):
    """zhang.wei is away and alex.morgan (team_lead) stands in for him as cs_manager."""
    async with run_worker(rules=with_delegation(tmp_path, "zhang.wei", "alex.morgan")) as redress:
        refund = await propose(redress, "refund", "4500")  # two cs_managers or above
        await redress.approve(refund, "zhang.wei", APPROVER_KEYS["zhang.wei"])
        twice = await refusal(redress.approve(refund, "alex.morgan", APPROVER_KEYS["alex.morgan"]))

        own = await open_case(redress, respond_as="zhang.wei")
        proposal = RemedyProposal(
            kind="refund", amount=Decimal("4500"), currency="CNY", reason="wedding", proposed_by="zhang.wei"
        )
        await redress.propose(own, proposal, APPROVER_KEYS["zhang.wei"])
        for_the_proposer = await refusal(redress.approve(own, "alex.morgan", APPROVER_KEYS["alex.morgan"]))
        await redress.approve(refund, "chen.jing", APPROVER_KEYS["chen.jing"])  # a second authority: it is paid
        await eventually(lambda: paid(redress, refund))
    assert "four eyes" in twice and "already signed" in twice
    assert "stands in for zhang.wei" in for_the_proposer
    assert len(peer.acted("/pay", complaint_id=refund)) == 1 and peer.acted("/pay", complaint_id=own) == []


async def test_a_finance_delegate_fills_the_finance_seat_and_leaves_the_managers_seat_to_a_manager(
    run_worker, peer, tmp_path
):
    """liu.yang (finance) stands in for chen.jing (director): his signature is finance's, his own role."""
    async with run_worker(rules=with_delegation(tmp_path, "chen.jing", "liu.yang")) as redress:
        cid = await propose(redress, "cash", "3000")
        await redress.approve(cid, "liu.yang", APPROVER_KEYS["liu.yang"])
        await redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])
        done = await eventually(lambda: paid(redress, cid))
    assert [s.approved_by for s in done.remedies[0].group.seats] == [["zhang.wei"], ["liu.yang"]]


async def test_payouts_split_below_the_threshold_still_reach_the_group(run_worker, peer):
    """zhang.wei may grant 2000 CNY of cash on his own signature; a second 2000 on the case makes 4000: the group's."""
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="zhang.wei")
        cash = RemedyProposal(kind="cash", amount=Decimal("2000"), currency="CNY", reason="x", proposed_by="zhang.wei")
        first = await redress.propose(cid, cash, APPROVER_KEYS["zhang.wei"])
        assert first.status.value == "approved"
        await eventually(lambda: paid(redress, cid))
        second = await redress.propose(cid, cash, APPROVER_KEYS["zhang.wei"])
        pending = (await redress.status(cid)).pending_approval
    assert second.status.value == "awaiting_approval" and pending.group.name == "large-cash"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


def crisis_signature(crisis: str, signer: str, amount: str) -> dict:
    at = datetime.now(UTC).replace(microsecond=0)
    terms = signatures.signed_terms(
        crisis, "C1", "approve", Decimal(amount), "CNY", signer, at, kind="cash", scope=signatures.CRISIS
    )
    return {
        "signed_by": signer,
        "signed_at": at.isoformat(),
        "signature": signatures.sign(APPROVER_KEYS[signer], terms),
    }


async def test_a_crisis_remedy_needs_a_signer_who_may_grant_it_before_the_case_asks_its_group(run_worker, peer):
    async with run_worker() as redress:
        asked, cases = {}, []
        for signer in ("sam.taylor", "chen.jing"):  # a specialist may not grant 3000 CNY; a director may
            sku = f"G-{uuid.uuid4().hex[:6]}"
            crisis = f"sku:{sku}"
            cid = await open_case(redress, respond_as="li.na", order={"id": "SO-1", "value": "900", "product_sku": sku})
            case = redress.handle(cid)
            await case.signal("crisis_declared", {"crisis_id": crisis, "raise_to": "urgent", "reason": "batch"})
            remedy = {"crisis_id": crisis, "proposal_id": "C1", "kind": "cash", "amount": "3000", "currency": "CNY"}
            remedy |= {"reason": "batch", "proposed_by": "wang.fang"}
            await case.signal("crisis_remedy", remedy | crisis_signature(crisis, signer, "3000"))

            async def settled(cid=cid):
                events = await redress.timeline(cid)
                return [e for e in events if e.kind in ("remedy_proposed", "signal_refused", "step_refused")]

            asked[signer] = (await eventually(settled), (await redress.status(cid)).pending_approval)
            cases.append(cid)
    refused, _ = asked["sam.taylor"]
    assert "may not grant" in refused[-1].detail and asked["sam.taylor"][1] is None
    proposed, pending = asked["chen.jing"]
    assert proposed[-1].kind == "remedy_proposed" and pending.group.name == "large-cash"
    assert all(peer.acted("/pay", complaint_id=cid) == [] for cid in cases)


def test_the_rules_name_a_groups_seats_wherever_they_say_who_approves():
    from activities.rules.approvals import check_offer
    from redress.contract import RemedyOffer
    from tests.helpers.rules import ROOT

    rules = load_rules(ROOT / "rules")
    group = check_offer(rules, "c", RemedyOffer(rule="r", kind="cash", amount=Decimal("3000"), currency="CNY"))
    single = check_offer(rules, "c", RemedyOffer(rule="r", kind="cash", amount=Decimal("1500"), currency="CNY"))
    assert group.approvers() == "group large-cash: cs_manager + finance" and single.approvers() == "cs_manager"
