"""Crisis detection on the real server: many complaints about one product within a short window."""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization

from redress.client import Refused
from redress.contract import RemedyProposal
from tests.helpers.cases import eventually, open_case
from tests.helpers.processes import redress_cli
from tests.helpers.rules import APPROVER_KEYS, write_rules


@pytest.fixture
def crisis_rules(tmp_path):
    rules = write_rules(tmp_path / "crisis-rules", first_response="300s", major_first_response="100s")
    path = rules / "across_cases.yaml"
    text = path.read_text(encoding="utf-8").replace("  window: 1h\n  threshold: 20", "  window: 30s\n  threshold: 3")
    path.write_text(text, encoding="utf-8")
    return rules


async def test_crisis_declared_at_the_threshold_raises_links_and_pays_a_common_remedy_once_each(
    run_worker, peer, crisis_rules, env, tmp_path
):
    sku = f"KETTLE-{uuid.uuid4().hex[:6]}"
    key = f"sku:{sku}"

    async def complain() -> str:
        return await open_case(
            redress,
            customer={"id": f"c-{uuid.uuid4().hex[:8]}", "language": "en"},
            text="The kettle stopped working",
            order={"id": f"SO-{uuid.uuid4().hex[:6]}", "value": "300", "product_sku": sku},
        )

    async with run_worker(rules=crisis_rules) as redress:
        first, second = await complain(), await complain()
        before = await redress.status(first)
        watch = await redress.crisis(key)
        assert watch["declared_at"] is None and watch["recent"] == 2  # not before the threshold
        assert before.severity.value == "general"

        third = await complain()
        linked = [first, second, third]

        async def all_raised():
            statuses = [await redress.status(cid) for cid in linked]
            return statuses if all(s.severity.value == "major" for s in statuses) else None

        statuses = await eventually(all_raised)
        assert statuses[0].deadlines["first_response"].due < before.deadlines["first_response"].due  # re-timed
        kinds = [e.kind for e in await redress.timeline(first)]
        assert "crisis_linked" in kinds and "severity_changed" in kinds
        told = await eventually(lambda: _notices(peer, "crisis_declared"))
        assert len(told) == 1 and told[0].body["role"] == "crisis_team" and sku in told[0].body["text"]

        fourth = await complain()  # while the crisis lasts, new complaints join it
        linked.append(fourth)
        await eventually(lambda: _is_major(redress, fourth))

        with pytest.raises(Refused, match="no common remedy awaits approval"):
            await redress.approve_common_remedy(key, "wang.fang", APPROVER_KEYS["wang.fang"])
        answer = await redress.propose_common_remedy(
            key,
            RemedyProposal(
                kind="refund", amount=Decimal("300"), currency="CNY", reason="faulty batch", proposed_by="li.na"
            ),
        )
        assert answer["status"] == "awaiting_approval" and answer["required_role"] == "team_lead"
        with pytest.raises(Refused, match="may not approve"):
            await redress.approve_common_remedy(key, "sam.taylor", APPROVER_KEYS["sam.taylor"])
        assert peer.acted("/pay") == []  # nothing is paid before the approval

        key_file = tmp_path / "wang.fang.pem"
        key_file.write_bytes(
            APPROVER_KEYS["wang.fang"].private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        code, out, err = await redress_cli(
            env,
            "--task-queue",
            redress.task_queue,
            "crisis",
            "approve",
            key,
            "--as",
            "wang.fang",
            "--key",
            str(key_file),
            "--json",
        )
        assert code == 0, err
        approved = json.loads(out)
        assert approved["status"] == "approved" and sorted(approved["applied_to"]) == sorted(linked)
        code, out, _ = await redress_cli(env, "crisis", "show", key)
        assert code == 0 and "approved" in out and "wang.fang" in out

        async def all_paid():
            return all(len(peer.acted("/pay", complaint_id=cid)) == 1 for cid in linked)

        await eventually(all_paid)
        records = [(await redress.status(cid)).remedies for cid in linked]
    for cid, remedies in zip(linked, records, strict=True):
        assert [(r.kind.value, r.amount, r.decided_by) for r in remedies] == [("refund", Decimal("300"), "wang.fang")]
        assert [r.key for r in peer.acted("/pay", complaint_id=cid)] == [f"remedy:{cid}:P1"]


async def _notices(peer, template: str) -> list:
    return [r for r in peer.acted("/notify") if r.body.get("template") == template]


async def _is_major(redress, cid: str) -> bool:
    return (await redress.status(cid)).severity.value == "major"


async def test_a_crisis_remedy_is_paid_only_to_a_linked_case_on_a_verified_signature(run_worker, peer):
    """Finding 2: `crisis_remedy` from anyone, to a case linked to no crisis, paid 99,999 CNY with no proof.
    And from review: a case's own approval, replayed as a crisis' remedy on another case, paid it again."""
    from datetime import datetime

    from redress import signatures

    async with run_worker() as redress:
        sku = f"FORGED-{uuid.uuid4().hex[:6]}"
        crisis = f"sku:{sku}"
        cid = await open_case(redress, respond_as="li.na", order={"id": "SO-1", "value": "900", "product_sku": sku})
        stranger = await open_case(redress, respond_as="li.na")  # about no product: in no crisis
        # a real approval on the stranger's case, to replay
        await redress.propose_remedy(
            stranger,
            RemedyProposal(kind="refund", amount=Decimal("400"), currency="CNY", reason="x", proposed_by="li.na"),
        )
        seen = await redress.sign_decision(stranger, "approve", "wang.fang", APPROVER_KEYS["wang.fang"])
        await redress.approve_remedy(stranger, seen)
        case = redress.handle(cid)
        remedy = {
            "crisis_id": crisis,
            "proposal_id": "C1",
            "kind": "cash",
            "amount": "99999",
            "currency": "CNY",
            "reason": "x",
            "proposed_by": "li.na",
        }

        def signed_by(name: str, amount: str, proposal: str, kind: str = "cash") -> dict:
            at = datetime.now(UTC).replace(microsecond=0)
            terms = signatures.signed_terms(
                crisis, proposal, "approve", Decimal(amount), "CNY", name, at, kind=kind, scope=signatures.CRISIS
            )
            return {
                "signed_by": name,
                "signed_at": at.isoformat(),
                "signature": signatures.sign(APPROVER_KEYS[name], terms),
            }

        await case.signal("crisis_remedy", remedy)  # linked to no crisis
        # anyone may link a case to a crisis (it only raises the case); money still needs a proven signer
        await case.signal("crisis_declared", {"crisis_id": crisis, "raise_to": "urgent", "reason": "say so"})
        await case.signal("crisis_remedy", remedy)  # unsigned
        await case.signal(
            "crisis_remedy", {**remedy, "proposal_id": "C2", "amount": "300", **signed_by("sam.taylor", "300", "C2")}
        )  # a specialist: 200 at most
        await case.signal("crisis_remedy", {**remedy, "proposal_id": "C3", **signed_by("wang.fang", "300", "C3")})
        await case.signal(
            "crisis_remedy",
            {
                **remedy,
                "proposal_id": "P1",
                "kind": "cash",
                "amount": "400",
                "signed_by": "wang.fang",
                "signed_at": seen.signed_at.isoformat(),
                "signature": seen.signature,
            },
        )  # the stranger's approval
        other = "sku:SOMETHING-ELSE"  # a crisis this case was never triaged into, linked by a signal
        await case.signal("crisis_declared", {"crisis_id": other, "raise_to": "urgent", "reason": "say so"})
        await case.signal(
            "crisis_remedy",
            {**remedy, "crisis_id": other, "proposal_id": "C5", "amount": "300", **signed_by("wang.fang", "300", "C5")},
        )
        good = {**remedy, "proposal_id": "C4", "amount": "300", **signed_by("wang.fang", "300", "C4")}
        await case.signal("crisis_remedy", good)
        await case.signal("crisis_remedy", good)  # the same remedy again: taken once

        async def paid():
            return peer.acted("/pay", complaint_id=cid)

        await eventually(paid)
        refusals = await eventually(lambda: _refusals(redress, cid, 6))
        status = await redress.status(cid)
    assert [
        "not linked to crisis" in refusals[0],
        "needs an approver's signature" in refusals[1],
        "sam.taylor may not grant 300" in refusals[2],
        "forged or altered" in refusals[3],
        "forged or altered" in refusals[4],
        "not linked to crisis sku:SOMETHING-ELSE" in refusals[5],
    ] == [True] * 6
    assert [(r.amount, r.decided_by, r.status.value) for r in status.remedies] == [
        (Decimal("300"), "wang.fang", "executed")
    ]
    assert len(peer.acted("/pay", complaint_id=cid)) == 1


async def _refusals(redress, cid: str, count: int) -> list[str] | None:
    found = [e.detail for e in await redress.timeline(cid) if e.kind == "signal_refused"]
    return found if len(found) >= count else None
