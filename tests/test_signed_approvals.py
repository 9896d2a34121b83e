"""Approvals are proven by the approver's key: unsigned, forged, altered, expired and replayed ones are refused."""

from __future__ import annotations

import asyncio
import base64
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from redress import signatures
from redress.client import Refused
from redress.contract import TASK_QUEUE, ApprovalDecision, RemedyProposal
from tests.helpers.cases import eventually, open_case, stage_is
from tests.helpers.processes import ROOT, redress_cli
from tests.helpers.rules import APPROVER_KEYS, write_rules


async def awaiting_case(redress) -> str:
    cid = await open_case(redress, respond_as="li.na")
    answer = await redress.propose_remedy(
        cid,
        RemedyProposal(kind="refund", amount=Decimal("800"), currency="CNY", reason="goodwill", proposed_by="li.na"),
    )
    assert answer.status.value == "awaiting_approval"
    return cid


def signed(
    cid: str, approver: str, key, amount: str = "800", signed_at: datetime | None = None, verb: str = "approve"
) -> ApprovalDecision:
    at = (signed_at or datetime.now(UTC)).replace(microsecond=0)
    terms = signatures.signed_terms(cid, "P1", verb, Decimal(amount), "CNY", approver, at)
    return ApprovalDecision(proposal_id="P1", approver=approver, signed_at=at, signature=signatures.sign(key, terms))


async def test_only_a_valid_fresh_signature_by_the_approver_is_accepted(run_worker, peer):
    async with run_worker() as redress:
        cid = await awaiting_case(redress)
        refusals = {
            "unsigned": ApprovalDecision(proposal_id="P1", approver="wang.fang"),
            "forged": signed(cid, "wang.fang", APPROVER_KEYS["alex.morgan"]),  # another person's key
            "altered": signed(cid, "wang.fang", APPROVER_KEYS["wang.fang"], amount="80"),  # other terms
            "expired": signed(
                cid,
                "wang.fang",
                APPROVER_KEYS["wang.fang"],
                signed_at=datetime.now(UTC) - timedelta(minutes=20),
            ),
            "future": signed(
                cid,
                "wang.fang",
                APPROVER_KEYS["wang.fang"],
                signed_at=datetime.now(UTC) + timedelta(minutes=30),
            ),
            "reject-signed": signed(cid, "wang.fang", APPROVER_KEYS["wang.fang"], verb="reject"),
        }
        reasons = {
            "unsigned": "unsigned",
            "forged": "forged",
            "altered": "forged or altered",
            "expired": "expired",
            "future": "in the future",
            "reject-signed": "forged or altered",
        }
        for case, decision in refusals.items():
            with pytest.raises(Refused, match=reasons[case]):
                await redress.approve_remedy(cid, decision)
        status = await redress.status(cid)
        assert status.stage.value == "awaiting_approval" and status.pending_approval.decided_by is None

        good = signed(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        record = await redress.approve_remedy(cid, good)
        assert record.decided_by == "wang.fang"
        with pytest.raises(Refused, match="replayed"):
            await redress.approve_remedy(cid, good)
        await stage_is(redress, cid, "remedy_executed")
        approved = next(e for e in await redress.timeline(cid) if e.kind == "remedy_approved")
    assert approved.actor == "approver:wang.fang"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_an_approver_without_a_public_key_cannot_approve(run_worker, tmp_path):

    rules = write_rules(tmp_path / "r")
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    start = text.index("  alex.morgan: {role: team_lead, public_key:")
    end = text.index("\n", start)
    (rules / "approval.yaml").write_text(
        text[:start] + "  alex.morgan: {role: team_lead}" + text[end:], encoding="utf-8"
    )
    async with run_worker(rules=rules) as redress:
        cid = await awaiting_case(redress)
        with pytest.raises(Refused, match=r"alex.morgan has no public key"):
            await redress.approve(cid, "alex.morgan", APPROVER_KEYS["alex.morgan"])


async def test_cli_signs_with_the_key_file(run_worker, env, tmp_path):
    from ruamel.yaml import YAML

    from activities.rules.schema import Approver  # the printed entry must be a valid directory entry

    keys = tmp_path / "keys"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "redress",
        "keys",
        "new",
        "someone",
        "--dir",
        str(keys),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    entry = YAML(typ="safe").load(out.decode().splitlines()[-1])
    assert Approver.model_validate(entry["someone"]).public_key
    assert oct((keys / "someone.pem").stat().st_mode & 0o777) == "0o600"

    (keys / "wang.fang.pem").write_bytes(_pem(APPROVER_KEYS["wang.fang"]))
    async with run_worker(task_queue=TASK_QUEUE) as redress:
        cid = await awaiting_case(redress)
        address = env.client.service_client.config.target_host
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redress",
            "--address",
            address,
            "approve",
            cid,
            "--as",
            "wang.fang",
            "--key",
            str(keys / "wang.fang.pem"),
            "--proposal",
            "P1",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        await stage_is(redress, cid, "remedy_executed")


def _pem(key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def test_approved_remedy_is_paid_once_across_failures_and_a_worker_restart(run_worker, peer):

    peer.script("/pay", fail=[503, 503])
    queue = "redress-restart-payment"
    async with run_worker(task_queue=queue) as redress:
        cid = await awaiting_case(redress)
        await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        await eventually(lambda: _attempts(peer, cid, 1), timeout=10)
    # the worker is gone between attempts; Temporal keeps the retry
    async with run_worker(task_queue=queue) as redress:
        status = await stage_is(redress, cid, "remedy_executed", timeout=30)
    attempts = peer.received("/pay", complaint_id=cid)
    assert len(attempts) == 3 and {a.key for a in attempts} == {f"remedy:{cid}:P1"}
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
    assert status.remedies[0].transaction_id == "tx-1" and status.remedies[0].decided_by == "wang.fang"


async def _attempts(peer, cid, count):
    return len(peer.received("/pay", complaint_id=cid)) >= count


async def test_pending_lists_cases_awaiting_approval_with_amount_role_and_age(run_worker, env):

    async with run_worker(task_queue=TASK_QUEUE) as redress:
        waiting = await awaiting_case(redress)
        other = await open_case(redress, respond_as="li.na")

        async def listed():
            ids = [s.complaint_id for s in await redress.pending()]
            return ids if waiting in ids else None

        ids = await eventually(listed)
        assert other not in ids
        code, out, _ = await redress_cli(env, "pending")
    line = next(line for line in out.splitlines() if line.startswith(waiting))
    assert code == 0 and "P1" in line and "800 CNY" in line and "team_lead" in line and "li.na" in line
    assert "0h00m" in line or "0h01m" in line


async def test_signal_path_records_refusals_and_changes_nothing(run_worker, peer):

    async with run_worker() as redress:
        cid = await awaiting_case(redress)
        handle = redress.handle(cid)
        await handle.signal("approve_remedy", ApprovalDecision(proposal_id="P1", approver="wang.fang"))
        await handle.signal("approve_remedy", signed(cid, "wang.fang", APPROVER_KEYS["alex.morgan"]))
        await handle.signal("approve_remedy", signed(cid, "sam.taylor", APPROVER_KEYS["sam.taylor"]))

        async def refusals():
            found = [e for e in await redress.timeline(cid) if e.kind == "decision_refused"]
            return found if len(found) == 3 else None

        refused = await eventually(refusals)
        assert [
            "unsigned" in refused[0].detail,
            "forged" in refused[1].detail,
            "may not decide" in refused[2].detail,
        ] == [True, True, True]
        status = await redress.status(cid)
        assert status.stage.value == "awaiting_approval" and status.pending_approval.decided_by is None

        await handle.signal("approve_remedy", signed(cid, "wang.fang", APPROVER_KEYS["wang.fang"]))
        status = await stage_is(redress, cid, "remedy_executed")
    assert status.remedies[0].decided_by == "wang.fang"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_a_claimed_name_moves_no_money_and_four_eyes_hold_on_the_verified_signer(run_worker, peer):
    """Finding 1: `proposed_by: chen.jing` (a director, no limit) unsigned was approved and paid 250,000 CNY."""
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        claimed = RemedyProposal(
            kind="cash", amount=Decimal("250000"), currency="CNY", reason="x", proposed_by="chen.jing"
        )
        # no other director (and this much cash needs finance too); the name proves nothing
        with pytest.raises(Refused, match="nobody besides the proposer at director or above"):
            await redress.propose_remedy(cid, claimed)
        manager = claimed.model_copy(update={"amount": Decimal("1200"), "proposed_by": "zhang.wei"})
        answer = await redress.propose_remedy(cid, manager)
        assert answer.status.value == "awaiting_approval" and answer.required_role == "cs_manager"
        with pytest.raises(Refused, match="four eyes"):  # the claimed proposer may not approve it either
            await redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])
        await redress.reject(cid, "chen.jing", APPROVER_KEYS["chen.jing"])
        assert peer.acted("/pay", complaint_id=cid) == []

        cid = await open_case(redress, respond_as="li.na")
        forged = await redress.sign_proposal(
            cid, claimed.model_copy(update={"amount": Decimal("100")}), APPROVER_KEYS["li.na"]
        )  # li.na's key, chen.jing's name
        with pytest.raises(Refused, match="forged or altered"):
            await redress.propose_remedy(cid, forged)
        # signed by wang.fang (team lead) above her own limit: it awaits, and she cannot approve her own proposal
        own = RemedyProposal(kind="refund", amount=Decimal("1200"), currency="CNY", reason="x", proposed_by="wang.fang")
        answer = await redress.propose(cid, own, APPROVER_KEYS["wang.fang"])
        assert answer.status.value == "awaiting_approval" and answer.required_role == "cs_manager"
        with pytest.raises(Refused, match="four eyes"):
            await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        await redress.approve(cid, "zhang.wei", APPROVER_KEYS["zhang.wei"])
        status = await stage_is(redress, cid, "remedy_executed")
    assert status.remedies[0].proposer_verified and status.remedies[0].decided_by == "zhang.wei"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_a_signature_counts_once_however_base64_spells_it(run_worker):
    async with run_worker() as redress:
        cid = await awaiting_case(redress)
        good = signed(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        assert good.signature is not None
        raw = base64.b64decode(good.signature)
        # base64's slack: unused bits in the last character, missing padding
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        last = alphabet.index(good.signature[-3])  # 2 bits of the signature, 4 that nobody reads
        respelled = [good.signature[:-3] + alphabet[(last & 0x30) | 0x5] + "==", good.signature.rstrip("=")]
        assert all(base64.b64decode(s + "=" * (-len(s) % 4)) == raw for s in respelled)
        for spelling in respelled:
            with pytest.raises(Refused, match="malformed signature"):
                await redress.approve_remedy(cid, good.model_copy(update={"signature": spelling}))
        await redress.approve_remedy(cid, good)
        with pytest.raises(Refused, match="replayed"):
            await redress.approve_remedy(cid, good)


async def test_identity_is_read_live_keys_registered_after_a_proposal_count_and_revoked_ones_do_not(
    run_worker, env, tmp_path
):
    """Finding 5: the directory was pinned per case; a newcomer's proposal could never be approved."""

    rules = write_rules(tmp_path / "live-rules")
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    start = text.index("  wang.fang: {role: team_lead, public_key:")
    (rules / "approval.yaml").write_text(
        text[:start] + "  wang.fang: {role: team_lead}" + text[text.index("\n", start) :], encoding="utf-8"
    )
    keys = tmp_path / "keys"

    async def cli(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redress",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        return await process.wait(), (out + err).decode()

    async with run_worker(rules=rules) as redress:
        first = await awaiting_case(redress)  # proposed while wang.fang has no key
        with pytest.raises(Refused, match=r"wang.fang has no public key"):
            await redress.approve(first, "wang.fang", APPROVER_KEYS["wang.fang"])
        code, out = await cli("keys", "new", "wang.fang", "--register", "--rules", str(rules), "--dir", str(keys))
        assert code == 0, out
        assert "# The approver directory" in (rules / "approval.yaml").read_text(encoding="utf-8")  # comments kept
        new_key = signatures.load_private_key((keys / "wang.fang.pem").read_bytes())
        record = await redress.approve(first, "wang.fang", new_key)  # no restart: read at the decision
        assert record.decided_by == "wang.fang"

        second = await awaiting_case(redress)
        code, out = await cli("keys", "revoke", "wang.fang", "--rules", str(rules))
        assert code == 0, out
        with pytest.raises(Refused, match="revoked"):
            await redress.approve(second, "wang.fang", new_key)  # pending before the revocation: still refused
        assert_the_revoked_key_cannot_come_back(rules, tmp_path / "copy")

        # a delegation is judged when the decision arrives, by the directory then
        third = await open_case(redress, respond_as="li.na")
        await redress.propose_remedy(
            third,
            RemedyProposal(kind="refund", amount=Decimal("3000"), currency="CNY", reason="big", proposed_by="li.na"),
        )
        with pytest.raises(Refused, match=r"sam.taylor may not decide"):
            await redress.approve(third, "sam.taylor", APPROVER_KEYS["sam.taylor"])
        with (rules / "approval.yaml").open("a", encoding="utf-8") as out_file:
            out_file.write("\ndelegations:\n  - {absent: zhang.wei, delegate: sam.taylor, until: 2099-12-31}\n")
        record = await redress.approve(third, "sam.taylor", APPROVER_KEYS["sam.taylor"])
        assert record.decided_by == "sam.taylor"
        approved = next(e for e in await redress.timeline(third) if e.kind == "remedy_approved")
        assert approved.data["verified"] and approved.data["role"] == "cs_manager for zhang.wei"


async def test_key_names_cannot_leave_the_keys_folder_or_break_the_directory(tmp_path):
    for name in ("../outside", "a\nb: {role: director}", "Upper", "x" * 65):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redress",
            "keys",
            "new",
            name,
            "--dir",
            str(tmp_path / "keys"),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        assert process.returncode == 2 and "not a directory name" in err.decode(), name
    assert not (tmp_path / "outside.pem").exists() and not (tmp_path / "keys").exists()


def assert_the_revoked_key_cannot_come_back(rules, copy):
    import shutil

    from ruamel.yaml import YAML

    from activities.rules import RulesInvalid, load_rules

    shutil.copytree(rules, copy)
    text = (copy / "approval.yaml").read_text(encoding="utf-8")
    revoked = YAML(typ="safe").load(text)["revoked_keys"][0]
    assert revoked["name"] == "wang.fang"
    (copy / "approval.yaml").write_text(
        text.replace(
            "  wang.fang: {role: team_lead}", f"  wang.fang: {{role: team_lead, public_key: {revoked['public_key']}}}"
        ),
        encoding="utf-8",
    )
    with pytest.raises(RulesInvalid, match="this key was revoked"):
        load_rules(copy)


async def test_the_automatic_limit_is_per_case_and_goods_without_a_value_need_an_approver(run_worker, peer):
    """From review: six unsigned 50 CNY proposals on one case paid 300; a 0-amount replacement was paid at once."""
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        small = RemedyProposal(kind="cash", amount=Decimal("30"), currency="CNY", reason="x", proposed_by="nobody")
        assert (await redress.propose_remedy(cid, small)).status.value == "approved"  # 30 of the 50
        await stage_is(redress, cid, "remedy_executed")
        again = await redress.propose_remedy(cid, small)  # 30 more would be 60: an approver decides
        assert again.status.value == "awaiting_approval"
        await redress.reject(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        goods = RemedyProposal(kind="replacement", reason="a new kettle", proposed_by="nobody")
        assert (await redress.propose_remedy(cid, goods)).status.value == "awaiting_approval"
        status = await redress.status(cid)
    assert [r.within_auto_limit for r in status.remedies] == [True, False, False]
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_decisions_fail_closed_while_the_rules_folder_does_not_load(run_worker, tmp_path):
    """From review: with an unrelated broken edit in the folder, a key removed by hand still approved."""

    rules = write_rules(tmp_path / "closed-rules")
    async with run_worker(rules=rules) as redress:
        cid = await awaiting_case(redress)
        routing = rules / "routing.yaml"
        routing.write_text(
            routing.read_text(encoding="utf-8") + "\n  - name: half-written\n    set: {", encoding="utf-8"
        )
        with pytest.raises(Refused, match=r"the rules folder does not load .*routing.yaml"):
            await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        routing.write_text(
            routing.read_text(encoding="utf-8").rsplit("\n  - name: half-written", 1)[0], encoding="utf-8"
        )
        record = await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])  # fixed: decided again
    assert record.decided_by == "wang.fang"
