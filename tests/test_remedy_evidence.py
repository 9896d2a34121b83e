"""Evidence before a remedy (issue 21): add_evidence puts a reference and a digest on the case; a proposal the rules
want evidence for waits, with the reason, and goes on once the evidence is there; it is paid once.

The shipped rules (rules/remedies.yaml, evidence_required) hold a refund above 200 CNY on a case tagged `damaged`
(the routing rule damaged-in-transit) until a photo or a recording is on the case.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from decimal import Decimal

import pytest

from activities.rules import RulesInvalid, load_rules
from redress.client import Refused
from redress.contract import (
    CustomerQuestion,
    CustomerReply,
    Evidence,
    RemedyProposal,
    Resolution,
    ResponseRecord,
)
from tests.helpers.cases import eventually, open_case, stage_is
from tests.helpers.processes import ROOT, redress_cli
from tests.helpers.rules import APPROVER_KEYS

DAMAGED = "快递送到时箱子破损，电水壶摔坏了，要求退款。"


def refund(amount: str, by: str = "li.na") -> RemedyProposal:
    return RemedyProposal(kind="refund", amount=Decimal(amount), currency="CNY", reason="kettle broken", proposed_by=by)


def evidence(kind: str, content: bytes, by: str = "customer", note: str | None = None) -> Evidence:
    return Evidence(
        kind=kind, ref=f"s3://evidence/{hashlib.md5(content).hexdigest()}", sha256=hashlib.sha256(content).hexdigest(),
        by=by, note=note,
    )  # fmt: skip


async def test_a_refund_for_damage_waits_for_a_photo_then_goes_to_approval_and_is_paid_once(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na", text=DAMAGED)
        assert "damaged" in (await redress.status(cid)).tags

        answer = await redress.propose_remedy(cid, refund("299"))
        assert answer.status.value == "awaiting_evidence"
        status = await redress.status(cid)
        held = status.remedies[0]
        assert held.evidence_needed == ["photo", "recording"] and "photo-before-damage-refund" in held.held_because
        assert status.pending_approval is None and status.stage.value == "in_progress"
        with pytest.raises(Refused, match="P1 waits for evidence"):
            await redress.propose_remedy(cid, refund("100"))

        # junk is refused naming the field, never echoing the value; a document is not what the rule asks for
        with pytest.raises(Refused, match="sha256") as refused:
            await redress.add_evidence(cid, {"kind": "photo", "ref": "x", "sha256": "secret-not-hex", "by": "li.na"})
        assert "secret-not-hex" not in str(refused.value)
        with pytest.raises(Refused, match="ref"):
            await redress.add_evidence(cid, {"kind": "photo", "ref": "a\x00b", "sha256": "ab" * 32, "by": "li.na"})
        status = await redress.add_evidence(cid, evidence("document", b"the delivery note", by="li.na"))
        assert status.remedies[0].status.value == "awaiting_evidence" and status.evidence[0].evidence_id == "E1"
        with pytest.raises(Refused, match="already on the case as E1"):
            await redress.add_evidence(cid, evidence("document", b"the delivery note", by="li.na"))

        # the photo releases it: not approved when proposed (li.na's 200 CNY do not cover it), so it goes to approval
        photo = evidence("photo", b"\x89PNG a dented kettle", note="箱子一角压扁")
        status = await redress.add_evidence(cid, photo)
        assert status.stage.value == "awaiting_approval" and status.pending_approval.proposal_id == "P1"
        kept = await redress.evidence(cid)
        assert status.evidence[1].sha256 == photo.sha256 and kept[1].note == "箱子一角压扁" and kept[1].ref == photo.ref
        assert peer.acted("/pay", complaint_id=cid) == []
        await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        await stage_is(redress, cid, "remedy_executed")

        await redress.add_evidence(cid, evidence("photo", b"another angle"))  # nothing waits: nothing more is paid
        timeline = await redress.timeline(cid)
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
    kinds = [e.kind for e in timeline]
    assert kinds.count("evidence_added") == 3 and kinds.count("remedy_released") == 1
    held_at, released_at = kinds.index("remedy_held"), kinds.index("remedy_released")
    assert held_at < released_at < kinds.index("remedy_approved") < kinds.index("remedy_executed")
    assert "E2 is on the case" in timeline[released_at].detail


async def test_evidence_already_there_holds_nothing_and_an_approved_held_remedy_is_paid_on_the_photo(run_worker, peer):
    async with run_worker() as redress:
        first = await open_case(redress, respond_as="li.na", text=DAMAGED)
        await redress.add_evidence(first, evidence("recording", b"unboxing video"))
        answer = await redress.propose_remedy(first, refund("299"))
        assert answer.status.value == "awaiting_approval"  # the recording was there first

        # signed by a team lead whose authority covers it: approved when proposed, paid once the photo comes
        second = await open_case(redress, respond_as="li.na", text=DAMAGED)
        answer = await redress.propose(second, refund("299", by="wang.fang"), APPROVER_KEYS["wang.fang"])
        assert answer.status.value == "awaiting_evidence"
        assert (await redress.status(second)).remedies[0].decided_by == "wang.fang"
        await redress.add_evidence(second, evidence("photo", b"dent"))
        await stage_is(redress, second, "remedy_executed")
        await eventually(lambda: _paid(peer, second))

        # small amounts never wait
        third = await open_case(redress, respond_as="li.na", text=DAMAGED)
        assert (await redress.propose_remedy(third, refund("150"))).status.value == "awaiting_approval"


async def _paid(peer, cid: str) -> bool:
    return len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_a_held_remedy_lapses_unpaid_when_the_case_is_resolved_without_the_evidence(run_worker, peer, env):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na", text=DAMAGED)
        await redress.propose_remedy(cid, refund("500"))
        await redress.record_response(cid, ResponseRecord(agent="li.na", message="please send a photo"))
        status = await redress.resolve(
            cid, Resolution(agent="li.na", summary="no photo came", root_cause="carrier_damage")
        )
        assert status.remedies[0].status.value == "lapsed"
        status = await redress.add_evidence(cid, evidence("photo", b"too late"))  # taken in follow-up; releases nothing
        assert status.remedies[0].status.value == "lapsed" and status.stage.value == "follow_up"
        code, out, err = await redress_cli(env, "show", cid)
    assert peer.acted("/pay", complaint_id=cid) == []
    assert code == 0 and "remedy_lapsed" in out, err


async def test_the_cli_adds_evidence_by_its_digest_and_shows_what_waits(run_worker, env, tmp_path):
    photo = tmp_path / "dent.jpg"
    photo.write_bytes(b"\xff\xd8 a dented kettle")
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na", text=DAMAGED)
        await redress.propose_remedy(cid, refund("299"))
        code, out, err = await redress_cli(env, "show", cid)
        assert code == 0 and "waits for photo or recording" in out, err
        code, out, err = await redress_cli(
            env, "evidence", cid, "--kind", "photo", "--file", str(photo), "--by", "li.na"
        )
        assert code == 0, err
        status, kept = await redress.status(cid), await redress.evidence(cid)
        code, _, missing = await redress_cli(env, "evidence", cid, "--kind", "photo", "--file", "/nowhere", "--by", "x")
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)  # would block a reader for ever
        code_fifo, _, not_regular = await redress_cli(
            env, "evidence", cid, "--kind", "photo", "--file", f"{fifo}", "--by", "x"
        )
    assert kept[0].sha256 == status.evidence[0].sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert kept[0].ref == photo.resolve().as_uri() and status.stage.value == "awaiting_approval"
    assert code == 2 and "--file" in missing
    assert code_fifo == 2 and "not a regular file" in not_regular


async def test_evidence_sent_while_the_customer_is_asked_for_it_releases_the_remedy_when_they_reply(run_worker):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na", text=DAMAGED)
        await redress.propose_remedy(cid, refund("299"))
        await redress.await_customer(cid, CustomerQuestion(agent="li.na", question="please send a photo"))
        status = await redress.add_evidence(cid, evidence("photo", b"sent with the answer"))
        assert status.stage.value == "pending_customer" and status.remedies[0].status.value == "awaiting_evidence"
        status = await redress.customer_replied(cid, CustomerReply(message="photo attached"))
        assert status.paused_since is None and status.stage.value == "awaiting_approval"
        assert status.pending_approval is not None and status.pending_approval.proposal_id == "P1"


async def test_a_signers_approval_that_waited_for_evidence_is_asked_of_the_live_directory_again(
    run_worker, rules_dir, env, peer
):
    async with run_worker(rules=rules_dir) as redress:
        cid = await open_case(redress, respond_as="li.na", text=DAMAGED)
        answer = await redress.propose(cid, refund("900", by="wang.fang"), APPROVER_KEYS["wang.fang"])
        assert answer.status.value == "awaiting_evidence"
        code, _, err = await redress_cli(env, "keys", "revoke", "wang.fang", "--rules", str(rules_dir))
        assert code == 0, err
        status = await redress.add_evidence(cid, evidence("photo", b"dent"))
        kinds = [e.kind for e in await redress.timeline(cid)]
    assert status.stage.value == "awaiting_approval" and status.pending_approval.decided_by is None
    assert "remedy_approval_lapsed" in kinds and peer.acted("/pay", complaint_id=cid) == []


def test_a_bad_evidence_rule_is_refused_with_its_place(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    text = (rules / "remedies.yaml").read_text(encoding="utf-8")
    (rules / "remedies.yaml").write_text(text.replace("evidence: [photo, recording]", "evidence: [selfie]"), "utf-8")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    line = next(n for n, t in enumerate((rules / "remedies.yaml").read_text().splitlines(), 1) if "selfie" in t)
    assert f"remedies.yaml:{line}:" in str(refused.value)
