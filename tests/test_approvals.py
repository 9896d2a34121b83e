"""Compensation above the proposer's authority waits for an eligible approver, and is paid once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from activities.io import ProposalCheck
from activities.rules import load_rules
from activities.rules.engine import check_proposal
from client import Refused
from tests.conftest import APPROVER_KEYS, ROOT, complaint, eventually, notices, open_case, stage_is
from workflows.contract import ApprovalDecision, RemedyProposal, ResponseRecord


def verdict(amount: str, currency: str = "CNY", by: str = "li.na", kind: str = "refund"):
    rules = load_rules(ROOT / "rules")
    return check_proposal(rules, ProposalCheck(complaint_id="c", rule_version=rules.version, kind=kind,
                                               amount=Decimal(amount), currency=currency, proposed_by=by))


def test_approval_matrix():
    assert not verdict("200").needs_approval  # a specialist's own limit
    over = verdict("200.01")
    assert over.required_role == "team_lead" and "li.na" not in over.eligible_approvers
    assert set(over.eligible_approvers) == {"wang.fang", "alex.morgan", "zhang.wei", "chen.jing"}
    assert verdict("3000").required_role == "cs_manager"
    assert not verdict("3000", by="zhang.wei").needs_approval
    assert verdict("9000").eligible_approvers == ["chen.jing"]
    assert verdict("9000", by="chen.jing").needs_approval is False
    assert verdict("40", currency="USD").required_role == "team_lead"
    assert not verdict("0", kind="apology").needs_approval
    assert not verdict("50", by="someone.new", kind="coupon").needs_approval  # the rules' auto-approve limit
    assert verdict("50.01", by="someone.new", kind="coupon").required_role == "specialist"
    # per-kind limits: a team lead may grant a 1500 CNY coupon but only 500 CNY cash
    assert verdict("1500", kind="coupon").required_role == "team_lead"
    assert verdict("1500", kind="refund").required_role == "cs_manager"
    assert verdict("600", kind="cash").required_role == "cs_manager"
    assert verdict("600", kind="refund").required_role == "team_lead"
    assert not verdict("1500", by="wang.fang", kind="coupon").needs_approval
    assert not verdict("999999", by="nobody.known", kind="apology").needs_approval


def test_no_role_may_approve_a_currency_nobody_has_limits_in(tmp_path):
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    (rules / "approval.yaml").write_text(text.replace("    - role: director\n", "    - role: director\n      limits: {CNY: 100000}\n"), encoding="utf-8")
    rule_set = load_rules(rules)
    answer = check_proposal(rule_set, ProposalCheck(complaint_id="c", rule_version=rule_set.version, kind="refund",
                                                    amount=Decimal("5"), currency="JPY", proposed_by="li.na"))
    assert not answer.allowed and "no role may approve 5 JPY" in answer.reason


async def test_over_limit_remedy_waits_for_an_eligible_approver_and_is_paid_once(run_worker, peer, env):
    async with run_worker() as redress:
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
        answer = await redress.propose_remedy(cid, RemedyProposal(
            kind="refund", amount=Decimal("800"), currency="CNY", reason="ruined birthday", proposed_by="li.na"))
        assert (answer.status.value, answer.required_role) == ("awaiting_approval", "team_lead")
        status = await redress.status(cid)
        assert status.stage.value == "awaiting_approval" and status.pending_approval.proposal_id == "P1"
        notice = await eventually(lambda: notices(peer, cid, "approval_needed"))
        assert notice[0].body["role"] == "team_lead"

        refusals = {
            "four eyes": ApprovalDecision(proposal_id="P1", approver="li.na"),
            "may not decide": ApprovalDecision(proposal_id="P1", approver="sam.taylor"),
            "stale proposal P7": ApprovalDecision(proposal_id="P7", approver="wang.fang"),
            "may not decide P1": ApprovalDecision(proposal_id="P1", approver="mallory"),
        }
        for reason, decision in refusals.items():
            with pytest.raises(Refused, match=reason):
                await redress.approve_remedy(cid, decision)
        with pytest.raises(Refused, match="still open"):
            await redress.propose_remedy(cid, RemedyProposal(kind="coupon", amount=Decimal("10"), currency="CNY",
                                                             reason="another", proposed_by="li.na"))
        unchanged = await redress.status(cid)
        assert unchanged.stage.value == "awaiting_approval" and len(unchanged.remedies) == 1
        assert [e.kind for e in await redress.timeline(cid)][-1] == "remedy_proposed"

        # the supervisor can find it in visibility
        async def listed():
            return [w async for w in env.client.list_workflows(
                f"ComplaintStatus = 'awaiting_approval' AND WorkflowId = 'complaint-{cid}'")]
        assert len(await eventually(listed)) == 1

        record = await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"], note="goodwill")
        assert record.decided_by == "wang.fang" and record.decided_at is not None
        status = await stage_is(redress, cid, "remedy_executed")
        with pytest.raises(Refused, match="no remedy awaits approval"):
            await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        events = await redress.timeline(cid)
    assert status.remedies[0].transaction_id == "tx-1"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
    approved = next(e for e in events if e.kind == "remedy_approved")
    assert approved.actor == "approver:wang.fang" and approved.data["rule_version"] == status.rule_version


async def test_rejected_remedy_returns_the_case_to_the_agent(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        await redress.propose_remedy(cid, RemedyProposal(kind="refund", amount=Decimal("800"), currency="CNY",
                                                         reason="goodwill", proposed_by="li.na"))
        record = await redress.reject(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"], note="offer a coupon instead")
        assert record.status.value == "rejected"
        status = await redress.status(cid)
        assert status.stage.value == "in_progress" and status.pending_approval is None
    assert peer.acted("/pay") == []


def test_a_delegate_decides_with_the_absent_approvers_authority_only_while_the_absence_lasts(tmp_path):
    import shutil
    from datetime import date

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "approval.yaml").open("a", encoding="utf-8") as out:
        out.write("\ndelegations:\n  - {absent: zhang.wei, delegate: sam.taylor, since: 2026-12-01, until: 2026-12-24}\n")
    rule_set = load_rules(rules)

    def eligible(on: date) -> list[str]:
        check = ProposalCheck(complaint_id="c", rule_version=rule_set.version, kind="refund",
                              amount=Decimal("3000"), currency="CNY", proposed_by="li.na")
        answer = check_proposal(rule_set, check, today=on)
        assert answer.required_role == "cs_manager"
        return answer.eligible_approvers

    assert eligible(date(2026, 12, 10)) == ["chen.jing", "sam.taylor", "zhang.wei"]
    assert eligible(date(2026, 12, 25)) == ["chen.jing", "zhang.wei"]  # the absence is over
    assert eligible(date(2026, 11, 30)) == ["chen.jing", "zhang.wei"]  # not yet begun
    own = ProposalCheck(complaint_id="c", rule_version=rule_set.version, kind="refund", amount=Decimal("3000"),
                        currency="CNY", proposed_by="sam.taylor")
    assert not check_proposal(rule_set, own, today=date(2026, 12, 10)).needs_approval


def test_a_delegation_must_name_people_in_the_directory(tmp_path):
    import shutil

    import pytest

    from activities.rules import RulesInvalid

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "approval.yaml").open("a", encoding="utf-8") as out:
        out.write("\ndelegations:\n  - {absent: zhang.wei, delegate: nobody.here, until: 2026-12-24}\n")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    [error] = refused.value.errors
    assert error.path == "delegations.0.delegate" and "not in the approver directory" in error.message
