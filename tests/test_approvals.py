"""Compensation above the proposer's authority waits for an eligible approver, and is paid once."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest

from activities.io import ProposalCheck
from activities.rules import load_rules
from activities.rules.approvals import check_proposal
from redress import signatures
from redress.client import Refused
from redress.contract import ApprovalDecision, RemedyProposal, ResponseRecord
from tests.helpers.cases import complaint, eventually, notices, open_case, stage_is
from tests.helpers.processes import ROOT
from tests.helpers.rules import APPROVER_KEYS


def verdict(amount: str, currency: str = "CNY", by: str = "li.na", kind: str = "refund", signed: bool = False):
    rules = load_rules(ROOT / "rules")
    return check_proposal(
        rules,
        ProposalCheck(
            complaint_id="c",
            rule_version=rules.version,
            kind=kind,
            amount=Decimal(amount),
            currency=currency,
            proposed_by=by,
            signed=signed,
        ),
    )


def grants_own(amount: str, by: str, kind: str = "refund") -> bool:
    """Whether `by` may grant it on their own signature (their authority covers it)."""
    answer = verdict(amount, by=by, kind=kind, signed=True)
    return answer.needs_approval and answer.proposer is not None and answer.proposer.covers


def test_approval_matrix():
    assert verdict("200").needs_approval  # unsigned, a name is only a claim: an approver decides
    assert grants_own("200", "li.na")  # a specialist's own limit, on li.na's signature
    assert not grants_own("200.01", "li.na")
    over = verdict("200.01")
    assert over.required_role == "team_lead" and "li.na" not in over.eligible_approvers
    assert set(over.eligible_approvers) == {"wang.fang", "alex.morgan", "zhang.wei", "chen.jing"}
    assert verdict("3000").required_role == "cs_manager"
    assert grants_own("3000", "zhang.wei")
    assert verdict("9000", kind="coupon").eligible_approvers == ["chen.jing"]  # refunds that big: a group's
    assert grants_own("9000", "chen.jing", kind="coupon")
    assert (
        not grants_own("60", "someone.new") and verdict("60", by="someone.new", signed=True).proposer.public_key is None
    )
    assert verdict("40", currency="USD").required_role == "team_lead"
    assert not verdict("0", kind="apology").needs_approval
    assert not verdict("50", by="someone.new", kind="coupon").needs_approval  # the rules' auto-approve limit
    assert verdict("50.01", by="someone.new", kind="coupon").required_role == "specialist"
    # per-kind limits: a team lead may grant a 1500 CNY coupon but only 500 CNY cash
    assert verdict("1500", kind="coupon").required_role == "team_lead"
    assert verdict("1500", kind="refund").required_role == "cs_manager"
    assert verdict("600", kind="cash").required_role == "cs_manager"
    assert verdict("600", kind="refund").required_role == "team_lead"
    assert grants_own("1500", "wang.fang", kind="coupon") and not grants_own("600", "wang.fang", kind="cash")
    assert not verdict("999999", by="nobody.known", kind="apology").needs_approval


def test_no_role_may_approve_a_currency_nobody_has_limits_in(tmp_path):
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    (rules / "approval.yaml").write_text(
        text.replace("    - role: director\n", "    - role: director\n      limits: {CNY: 100000}\n"), encoding="utf-8"
    )
    rule_set = load_rules(rules)
    answer = check_proposal(
        rule_set,
        ProposalCheck(
            complaint_id="c",
            rule_version=rule_set.version,
            kind="refund",
            amount=Decimal("5"),
            currency="JPY",
            proposed_by="li.na",
        ),
    )
    assert not answer.allowed and "no role may approve 5 JPY" in answer.reason


async def test_over_limit_remedy_waits_for_an_eligible_approver_and_is_paid_once(run_worker, peer, env):
    async with run_worker() as redress:
        data = complaint()
        cid = data["complaint_id"]
        await redress.submit(data)
        await stage_is(redress, cid, "acknowledged")
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
        answer = await redress.propose_remedy(
            cid,
            RemedyProposal(
                kind="refund", amount=Decimal("800"), currency="CNY", reason="ruined birthday", proposed_by="li.na"
            ),
        )
        assert (answer.status.value, answer.required_role) == ("awaiting_approval", "team_lead")
        status = await redress.status(cid)
        assert status.stage.value == "awaiting_approval" and status.pending_approval.proposal_id == "P1"
        notice = await eventually(lambda: notices(peer, cid, "approval_needed"))
        assert notice[0].body["role"] == "team_lead"

        mallory = signatures.load_private_key(signatures.new_key_pair()[0])  # a key nobody registered
        refusals = {
            "four eyes": await redress.sign_decision(cid, "approve", "li.na", APPROVER_KEYS["li.na"]),
            "sam.taylor may not decide P1: it needs team_lead": await redress.sign_decision(
                cid, "approve", "sam.taylor", APPROVER_KEYS["sam.taylor"]
            ),
            "stale proposal P7": ApprovalDecision(proposal_id="P7", approver="wang.fang"),
            "mallory has no public key": await redress.sign_decision(cid, "approve", "mallory", mallory),
        }
        for reason, decision in refusals.items():
            with pytest.raises(Refused, match=reason):
                await redress.approve_remedy(cid, decision)
        with pytest.raises(Refused, match="still open"):
            await redress.propose_remedy(
                cid,
                RemedyProposal(
                    kind="coupon", amount=Decimal("10"), currency="CNY", reason="another", proposed_by="li.na"
                ),
            )
        unchanged = await redress.status(cid)
        assert unchanged.stage.value == "awaiting_approval" and len(unchanged.remedies) == 1
        assert [e.kind for e in await redress.timeline(cid)][-1] == "remedy_proposed"

        # the supervisor can find it in visibility
        async def listed():
            return [
                w
                async for w in env.client.list_workflows(
                    f"ComplaintStatus = 'awaiting_approval' AND WorkflowId = 'complaint-{cid}'"
                )
            ]

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
        await redress.propose_remedy(
            cid,
            RemedyProposal(
                kind="refund", amount=Decimal("800"), currency="CNY", reason="goodwill", proposed_by="li.na"
            ),
        )
        record = await redress.reject(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"], note="offer a coupon instead")
        assert record.status.value == "rejected"
        status = await redress.status(cid)
        assert status.stage.value == "in_progress" and status.pending_approval is None
    assert peer.acted("/pay") == []


def test_a_delegate_decides_with_the_absent_approvers_authority_only_while_the_absence_lasts(tmp_path):
    import shutil
    from datetime import date, datetime

    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "approval.yaml").open("a", encoding="utf-8") as out:
        out.write(
            "\ndelegations:\n  - {absent: zhang.wei, delegate: sam.taylor, since: 2026-12-01, until: 2026-12-24}\n"
        )
    rule_set = load_rules(rules)

    def at(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)

    def eligible(on: date) -> list[str]:
        check = ProposalCheck(
            complaint_id="c",
            rule_version=rule_set.version,
            kind="refund",
            amount=Decimal("3000"),
            currency="CNY",
            proposed_by="li.na",
            at=at(on),
        )
        answer = check_proposal(rule_set, check)
        assert answer.required_role == "cs_manager"
        return answer.eligible_approvers

    assert eligible(date(2026, 12, 10)) == ["chen.jing", "sam.taylor", "zhang.wei"]
    assert eligible(date(2026, 12, 25)) == ["chen.jing", "zhang.wei"]  # the absence is over
    assert eligible(date(2026, 11, 30)) == ["chen.jing", "zhang.wei"]  # not yet begun
    own = ProposalCheck(
        complaint_id="c",
        rule_version=rule_set.version,
        kind="refund",
        amount=Decimal("3000"),
        currency="CNY",
        proposed_by="sam.taylor",
        at=at(date(2026, 12, 10)),
        signed=True,
    )
    answer = check_proposal(rule_set, own)
    assert answer.proposer is not None
    assert answer.proposer.covers and answer.proposer.acting_for == "zhang.wei"


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
