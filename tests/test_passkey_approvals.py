"""Passkeys prove decisions as key files do: the workflow verifies the assertion itself against the live directory.

The assertions here come from a software authenticator (tests/helpers/authenticator.py),
so each flaw can be made on purpose; the console's tests use Chromium's own.
"""

from __future__ import annotations

import asyncio
import base64
import re
import string
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.rules import directory
from redress import signatures
from redress.client import Refused
from redress.contract import ApprovalDecision, RemedyProposal, crisis_workflow_id
from tests.helpers.authenticator import UP, SoftAuthenticator, with_passkey
from tests.helpers.cases import eventually, open_case, stage_is
from tests.helpers.rules import APPROVER_KEYS, write_rules


def decision(cid: str, approver: str, device: SoftAuthenticator, amount: str = "299", **how) -> ApprovalDecision:
    at = datetime.now(UTC).replace(microsecond=0)
    terms = signatures.signed_terms(cid, "P1", "approve", Decimal(amount), "CNY", approver, at)
    return ApprovalDecision(proposal_id="P1", approver=approver, signed_at=at, passkey=device.sign(terms, **how))


async def awaiting(redress, amount: str = "299") -> str:
    cid = await open_case(redress, respond_as="li.na")
    proposal = RemedyProposal(kind="refund", amount=Decimal(amount), currency="CNY", reason="late", proposed_by="li.na")
    assert (await redress.propose_remedy(cid, proposal)).status.value == "awaiting_approval"
    return cid


async def test_a_passkey_approves_only_its_own_persons_exact_terms_on_the_allowed_origin(run_worker, tmp_path, peer):
    lead, colleague, specialist = SoftAuthenticator(), SoftAuthenticator(), SoftAuthenticator()
    rules = write_rules(tmp_path / "rules")
    with_passkey(rules, "wang.fang", lead)
    with_passkey(rules, "alex.morgan", colleague)
    with_passkey(rules, "sam.taylor", specialist)
    async with run_worker(rules=rules) as redress:
        cid = await awaiting(redress)
        refused = {
            "altered": (decision(cid, "wang.fang", lead, amount="29"), "forged or altered"),
            "elsewhere": (decision(cid, "wang.fang", lead, origin="https://evil.example"), "origin"),
            "other party": (decision(cid, "wang.fang", lead, rp_id="evil.example"), "RP ID"),
            "not verified": (decision(cid, "wang.fang", lead, flags=UP), "verif"),
            "registration": (decision(cid, "wang.fang", lead, kind="webauthn.create"), "type"),
            "framed": (decision(cid, "wang.fang", lead, crossOrigin=True), "inside a frame"),
            "framed elsewhere": (decision(cid, "wang.fang", lead, topOrigin="https://evil.example"), "inside a frame"),
            "someone else's": (decision(cid, "wang.fang", colleague), "no such passkey"),
            "below the level": (decision(cid, "sam.taylor", specialist), "may not decide"),
        }
        for name, (sent, reason) in refused.items():
            with pytest.raises(Refused, match=reason):
                await redress.approve_remedy(cid, sent)
            assert (await redress.status(cid)).stage.value == "awaiting_approval", name
        both = decision(cid, "wang.fang", lead).model_copy(update={"signature": "A" * 88})
        with pytest.raises(Refused, match="not both"):
            await redress.approve_remedy(cid, both)
        junk = decision(cid, "wang.fang", lead)
        assert junk.passkey is not None
        junk.passkey = junk.passkey.model_copy(update={"signature": "AAAA", "authenticator_data": "A" * 37})
        with pytest.raises(Refused, match=r"forged or altered|malformed"):
            await redress.approve_remedy(cid, junk)

        good = decision(cid, "wang.fang", lead)
        record = await redress.approve_remedy(cid, good)
        assert record.decided_by == "wang.fang"
        with pytest.raises(Refused, match="replayed"):
            await redress.approve_remedy(cid, good)
        await stage_is(redress, cid, "remedy_executed")
        approved = next(e for e in await redress.timeline(cid) if e.kind == "remedy_approved")
    assert approved.actor == "approver:wang.fang"
    assert approved.data["verified"] is True and approved.data["proof"] == "passkey"
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def test_a_revoked_passkey_decides_nothing_and_a_new_one_counts_at_once(run_worker, tmp_path):
    old, new = SoftAuthenticator(), SoftAuthenticator()
    rules = write_rules(tmp_path / "rules")
    with_passkey(rules, "wang.fang", old)
    async with run_worker(rules=rules) as redress:
        cid = await awaiting(redress)
        directory.revoke_passkey(rules, "wang.fang", old.credential_id)
        with pytest.raises(Refused, match="no such passkey"):
            await redress.approve_remedy(cid, decision(cid, "wang.fang", old))
        with pytest.raises(directory.DirectoryEditRefused, match="revoked"):
            directory.register_passkey(rules, "wang.fang", old.credential_id + "x", old.public_key)
        directory.register_passkey(rules, "wang.fang", new.credential_id, new.public_key, label="laptop")
        assert (await redress.approve_remedy(cid, decision(cid, "wang.fang", new))).decided_by == "wang.fang"

        other = await awaiting(redress)
        directory.revoke(rules, "wang.fang")  # the person: their key and every passkey
        with pytest.raises(Refused, match="no such passkey"):
            await redress.approve_remedy(other, decision(other, "wang.fang", new))


async def test_a_proposer_whose_authority_covers_it_grants_it_with_their_passkey(run_worker, tmp_path, peer):
    device = SoftAuthenticator()
    rules = write_rules(tmp_path / "rules")
    with_passkey(rules, "wang.fang", device)
    async with run_worker(rules=rules) as redress:
        cid = await open_case(redress, respond_as="wang.fang")
        at = datetime.now(UTC).replace(microsecond=0)
        terms = signatures.signed_terms(cid, "P1", "propose", Decimal("299"), "CNY", "wang.fang", at, kind="refund")
        proposal = RemedyProposal(
            kind="refund",
            amount=Decimal("299"),
            currency="CNY",
            reason="late",
            proposed_by="wang.fang",
            signed_at=at,
            passkey=device.sign(terms),
        )
        answer = await redress.propose_remedy(cid, proposal)
        assert answer.status.value == "approved"
        status = await stage_is(redress, cid, "remedy_executed")
        # the key-file path still works beside passkeys
        assert status.remedies[0].proposer_verified and APPROVER_KEYS["wang.fang"]
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


def test_a_revoked_passkey_cannot_come_back_respelt_or_reordered(tmp_path):
    import cbor2

    from activities.rules.loader import RulesInvalid, load_rules
    from redress.passkeys import b64url, from_b64url

    device = SoftAuthenticator()
    rules = write_rules(tmp_path / "rules")
    with_passkey(rules, "wang.fang", device)
    directory.revoke_passkey(rules, "wang.fang", device.credential_id)
    cose = cbor2.loads(from_b64url(device.public_key))
    reordered = b64url(cbor2.dumps(dict(reversed(list(cose.items())))))
    assert reordered != device.public_key
    for spelling, problem in (
        (device.public_key + "==", "unpadded"),
        (reordered, "was revoked"),
    ):
        with pytest.raises(directory.DirectoryEditRefused, match=problem):
            directory.register_passkey(rules, "wang.fang", b64url(b"another-id"), spelling)
    with pytest.raises(directory.DirectoryEditRefused, match="was revoked"):  # the same credential, another key
        directory.register_passkey(rules, "wang.fang", device.credential_id, SoftAuthenticator().public_key)
    assert load_rules(rules).document.approvers["wang.fang"].passkeys == []
    # an Ed25519 key respelt (the spare bits of its last base64 digit set) is refused too
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    found = re.search(r"wang.fang: \{role: team_lead, public_key: ([^,}]+)", text)
    assert found is not None
    key = found.group(1)
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    respelt = key[:-2] + alphabet[alphabet.index(key[-2]) ^ 1] + key[-1]
    assert base64.b64decode(respelt) == base64.b64decode(key)
    (rules / "approval.yaml").write_text(text.replace(key, respelt), encoding="utf-8")
    with pytest.raises(RulesInvalid, match="Ed25519"):
        load_rules(rules)


def test_the_directory_refuses_a_passkey_that_is_not_one_or_is_someone_elses(tmp_path):
    from activities.rules.loader import RulesInvalid, load_rules

    device = SoftAuthenticator()
    rules = write_rules(tmp_path / "rules")
    with_passkey(rules, "wang.fang", device)
    with_passkey(rules, "alex.morgan", device)
    with pytest.raises(RulesInvalid) as invalid:
        load_rules(rules)
    assert any("already wang.fang's" in str(e) and "approval.yaml:" in str(e) for e in invalid.value.errors)

    rules = write_rules(tmp_path / "rules2")
    text = (rules / "approval.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  chen.jing: {role: director", "  chen.jing: {role: director, passkeys: [{id: abc, public_key: AAAA}]"
    )
    (rules / "approval.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(RulesInvalid) as invalid:
        load_rules(rules)
    assert any("COSE" in str(e) for e in invalid.value.errors)


async def test_a_crisis_common_remedy_approved_with_a_passkey_is_verified_and_paid_once_by_each_case(
    run_worker, tmp_path, peer
):
    import uuid

    lead = SoftAuthenticator()
    rules = write_rules(tmp_path / "rules", first_response="300s", major_first_response="100s")
    across = rules / "across_cases.yaml"
    across.write_text(
        across.read_text(encoding="utf-8").replace("  window: 1h\n  threshold: 20", "  window: 8s\n  threshold: 2"),
        encoding="utf-8",
    )
    with_passkey(rules, "wang.fang", lead)
    sku = f"KETTLE-{uuid.uuid4().hex[:6]}"
    key = f"sku:{sku}"
    async with run_worker(rules=rules) as redress:
        linked = [
            await open_case(redress, order={"id": f"SO-{uuid.uuid4().hex[:6]}", "value": "300", "product_sku": sku})
            for _ in range(2)
        ]
        await eventually(lambda: _declared(redress, key))
        proposal = RemedyProposal(
            kind="refund", amount=Decimal("120"), currency="CNY", reason="batch", proposed_by="li.na"
        )
        assert (await redress.propose_common_remedy(key, proposal))["status"] == "awaiting_approval"
        # the quiet window passes while the remedy awaits its decision: the watch waits for it (it once spun
        # without yielding here, failing its workflow task again and again)
        await asyncio.sleep(9)
        assert (await redress.crisis(key))["proposals"][0]["status"] == "awaiting_approval"

        def approval(amount: str) -> ApprovalDecision:
            at = datetime.now(UTC).replace(microsecond=0)
            terms = signatures.signed_terms(
                key, "C1", "approve", Decimal(amount), "CNY", "wang.fang", at, kind="refund", scope=signatures.CRISIS
            )
            return ApprovalDecision(proposal_id="C1", approver="wang.fang", signed_at=at, passkey=lead.sign(terms))

        with pytest.raises(Refused, match="forged or altered"):
            await redress.approve_common_remedy_as(key, approval("1200"))
        approved = await redress.approve_common_remedy_as(key, approval("120"))
        assert approved["status"] == "approved" and sorted(approved["applied_to"]) == sorted(linked)

        async def all_paid():
            return all(len(peer.acted("/pay", complaint_id=cid)) == 1 for cid in linked)

        await eventually(all_paid)
        for cid in linked:  # each case verified the passkey itself
            remedy = (await redress.status(cid)).remedies[0]
            assert (remedy.amount, remedy.decided_by) == (Decimal("120"), "wang.fang")

        async def ended():  # its window long over and nothing left to hold it, the watch ends
            described = await redress.client.get_workflow_handle(crisis_workflow_id(key)).describe()
            return described.status == WorkflowExecutionStatus.COMPLETED

        await eventually(ended, timeout=20)


async def _declared(redress, key: str):
    try:
        watch = await redress.crisis(key)
    except Exception:
        return None
    return watch if watch["declared_at"] else None
