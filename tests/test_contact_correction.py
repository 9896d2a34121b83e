"""correct_contact: new contact details on an open case, and no old value left readable.

The case's key moves on a generation, the case continues as a new run holding only the
new details, and that run shreds the earlier key: the old run's history, which held the
old ones (the complaint as received, every notice's input), no longer opens.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client

from redress import codec, subject_access
from redress.client import Refused
from redress.contract import (
    ComplaintInput,
    ContactCorrection,
    Feedback,
    ProposalRecord,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Stage,
    workflow_id_for,
)
from tests.helpers.browser import CHROMIUM, chromium, console, register_and_sign_in, screenshot
from tests.helpers.cases import complaint, eventually, notices, open_case, stage_is
from tests.helpers.histories import payloads_in
from tests.helpers.rules import APPROVER_KEYS, write_rules
from tests.helpers.serving import data_converter
from workflows.case_state import CaseHandover, CaseState

OLD = {"phone": "+86 138 0000 0000", "email": "li.lei@example.com"}  # tests/helpers/cases.py's complaint
NEW = {"phone": "+86 139 2222 3333", "email": "lei.li@example.cn"}


async def test_a_corrected_contact_leaves_no_old_value_readable_and_the_case_goes_on(run_worker, peer, env):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        first_run = (await redress.handle(cid).describe()).run_id
        await redress.correct_contact(cid, ContactCorrection(**NEW, by="li.na"))

        async def shredded():
            return any(e.kind == "old_contact_shredded" for e in await redress.timeline(cid))

        await eventually(shredded)
        now = await redress.complaint(cid)

        # the case goes on in its new run: a small refund is paid and its notice goes to the new contact
        small = RemedyProposal(kind="refund", amount=Decimal("30"), currency="CNY", reason="late", proposed_by="li.na")
        await redress.propose_remedy(cid, small)
        paid = await eventually(lambda: notices(peer, cid, "remedy_executed"))
        await redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="carrier_delay"))
        await stage_is(redress, cid, "follow_up")
        timeline = await redress.timeline(cid)
        plain = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace)
        old_run = await plain.get_workflow_handle(workflow_id_for(cid), run_id=first_run).fetch_history()
        new_run = await plain.get_workflow_handle(workflow_id_for(cid)).fetch_history()
        again = await _refusal(redress.correct_contact(cid, ContactCorrection(phone="+86 139 0000 0001", by="x")))
        held = json.dumps(await subject_access.collect(redress, now.customer.id, by="zhang.wei"), ensure_ascii=False)

    assert (now.customer.phone, now.customer.email, now.customer.name) == (NEW["phone"], NEW["email"], "Li Lei")
    assert paid[0].body["to"]["phone"] == NEW["phone"] and paid[0].body["to"]["email"] == NEW["email"]
    # every payload of the old run that was sealed with the earlier key no longer opens; what does open
    # (sealed after the rekey: the handover) holds no old value
    keys = codec.codec_of(data_converter())
    opened, refused = [], 0
    for event in old_run.events:
        for payload in payloads_in(event):
            try:
                opened.append(keys.decode_one(payload).SerializeToString())
            except codec.PersonalDataErased:
                refused += 1
    assert refused >= 3  # the complaint as received, the acknowledgement's input, the response...
    assert not [p for p in opened if OLD["phone"].encode() in p or OLD["email"].encode() in p]
    new_payloads = [keys.decode_one(p).SerializeToString() for e in new_run.events for p in payloads_in(e)]
    assert any(NEW["phone"].encode() in p for p in new_payloads)
    assert not [p for p in new_payloads if OLD["phone"].encode() in p or OLD["email"].encode() in p]
    [corrected] = [e for e in timeline if e.kind == "contact_corrected"]
    assert corrected.data["fields"] == ["phone", "email"] and corrected.actor == "agent:li.na"
    assert not [e for e in timeline if any(v in e.detail for v in (*OLD.values(), *NEW.values()))]
    assert "resolved" in again
    assert NEW["phone"] in held and OLD["phone"] not in held and OLD["email"] not in held  # a subject-access export
    assert held.count(f'"complaint_id": "{cid}"') >= 1


async def test_a_correction_is_refused_when_it_changes_nothing_or_carries_junk(run_worker):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        same = await _refusal(redress.correct_contact(cid, ContactCorrection(phone=OLD["phone"], by="li.na")))
        junk = {}
        for name, body in {
            "nothing": {"by": "li.na"},
            "bad phone": {"phone": "call me", "by": "li.na"},
            "no by": {"phone": NEW["phone"]},
            "not an object": ["phone"],
        }.items():
            with pytest.raises(Exception) as refused:
                await redress.handle(cid).execute_update("correct_contact", body)
            junk[name] = str(refused.value.__cause__ or refused.value)
        status = await redress.status(cid)
        kept = await redress.complaint(cid)
        # a start that claims to be a handed-over case (approvals and payouts in it) is only a refused complaint
        forged = {
            "handover": "contact-correction",
            "notices_sequence": 0,
            "case": {"id": "F-1", "stage": "in_progress"},
        }
        await redress.client.start_workflow(
            "Complaint", forged, id=workflow_id_for("F-1"), task_queue=redress.task_queue
        )
        refused = await stage_is(redress, "F-1", "refused")
    assert "already" in same
    assert "at least one of name, phone, email" in junk["nothing"] and "phone" in junk["bad phone"]
    assert "by" in junk["no by"] and junk["not an object"]
    assert refused.stage.value == "refused"
    assert status.stage.value == "in_progress" and kept.customer.phone == OLD["phone"]  # nothing changed


async def _refusal(call) -> str:
    with pytest.raises(Refused) as refused:
        await call
    return str(refused.value)


def test_a_case_key_has_generations_and_shredding_one_leaves_the_next(tmp_path):
    """The codec alone, on the local store (tests/test_shared_state.py: the same on PostgreSQL)."""
    ring = codec.KeyRing.rotate(tmp_path, first=True)
    key_generations_hold(codec.SubjectKeys(tmp_path / "subjects.sqlite", ring), ring)


def key_generations_hold(subjects: codec.SubjectKeys, ring: codec.KeyRing) -> None:
    """A payload sealed before a rekey opens until its generation is shredded; after, never; erasure takes all."""
    case = codec.EncryptionCodec(ring, subjects, subject="complaint-T-1", workflow_id="complaint-T-1")
    before = case.encode_one(Payload(data=b"old phone"))
    assert subjects.rekey("complaint-T-1", from_generation=1) == 2
    assert subjects.rekey("complaint-T-1", from_generation=1) == 2  # a retried step changes nothing more
    after = case.encode_one(Payload(data=b"new phone"))
    assert after.metadata[codec.GENERATION] == b"2" and codec.GENERATION not in before.metadata
    assert case.decode_one(before).data == b"old phone" and case.decode_one(after).data == b"new phone"
    subjects.shred_before("complaint-T-1", 2)
    subjects.after_erasure()
    with pytest.raises(codec.PersonalDataErased):
        case.decode_one(before)
    assert case.decode_one(after).data == b"new phone"
    subjects.erase("complaint-T-1")
    with pytest.raises(codec.PersonalDataErased):
        case.decode_one(after)


@pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (.ci/run installs it)")
async def test_an_agent_corrects_the_contact_details_in_the_console(run_worker, tmp_path):
    rules = write_rules(tmp_path / "rules")
    async with run_worker(rules=rules) as redress, console(redress, rules) as url, chromium() as browser:
        cid = await open_case(redress, respond_as="li.na")
        agent = await register_and_sign_in(browser, url, "li.na")
        await agent.goto(f"{url}/cases/{cid}")
        form = agent.locator("#correct-contact")
        await form.locator("input[name=phone]").fill(NEW["phone"])
        await form.locator("button").click()
        await agent.locator("#flash", has_text="contact details corrected (phone)").wait_for()

        async def shredded():
            return any(e.kind == "old_contact_shredded" for e in await redress.timeline(cid))

        await eventually(shredded)
        await agent.goto(f"{url}/cases/{cid}")
        page = await agent.content()
        await screenshot(agent, "case-contact-corrected")
        now = await redress.complaint(cid)
    assert NEW["phone"] in page and OLD["phone"] not in page
    assert now.customer.email == OLD["email"]  # only what was given changes


async def test_a_forged_handover_is_refused_even_by_a_run_that_continues_a_cron(run_worker, peer):
    """A cron run has a continued run id too: a state claiming approvals and a payout must still move nothing."""
    async with run_worker() as redress:
        forged_case = CaseState(
            id="FORGED-1",
            complaint=ComplaintInput.model_validate(complaint(complaint_id="FORGED-1")),
            problems=[],
            stage=Stage.remedy_proposed,
            key_generation=2,
        )
        forged_case.proposals.append(
            ProposalRecord(
                proposal_id="P1",
                kind="refund",
                amount=Decimal("99999"),
                currency="CNY",
                reason="x",
                proposed_by="li.na",
                status="approved",
                rule_version="x",
            )
        )
        forged_case.to_execute.append("P1")
        forged = CaseHandover.of(forged_case, 0)
        handle = await redress.client.start_workflow(
            "Complaint",
            forged,
            id=workflow_id_for("FORGED-1"),
            task_queue=redress.task_queue,
            cron_schedule="@every 2s",
        )

        async def later_runs() -> int:
            runs = [e async for e in redress.client.list_workflows(f"WorkflowId = '{workflow_id_for('FORGED-1')}'")]
            return len(runs) >= 2 and len(runs)

        await eventually(later_runs, timeout=30)
        await handle.terminate("test over")
    assert peer.acted("/pay", complaint_id="FORGED-1") == []


async def test_an_approval_landing_during_the_handover_is_paid_in_the_case_that_goes_on(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        proposal = RemedyProposal(kind="refund", amount=Decimal("800"), currency="CNY", reason="x", proposed_by="li.na")
        await redress.propose_remedy(cid, proposal)
        await asyncio.gather(
            redress.correct_contact(cid, ContactCorrection(phone=NEW["phone"], by="li.na")),
            redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"]),
        )

        async def settled():
            kinds = [e.kind for e in await redress.timeline(cid)]
            return "old_contact_shredded" in kinds and "remedy_executed" in kinds

        await eventually(settled)
        told = await eventually(lambda: notices(peer, cid, "remedy_executed"))
    assert len(peer.acted("/pay", complaint_id=cid)) == 1
    assert told[0].body["to"]["phone"] == NEW["phone"]


async def test_a_correction_waits_while_a_message_to_the_customer_is_on_its_way(run_worker, peer):
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        peer.script("/notify", fail=[503] * 3)  # the next notice is retried for a few seconds
        await redress.record_response(cid, ResponseRecord(agent="li.na", message="we are on it"))
        refused = await _refusal(redress.correct_contact(cid, ContactCorrection(phone=NEW["phone"], by="li.na")))

        async def accepted():
            try:
                return await redress.correct_contact(cid, ContactCorrection(phone=NEW["phone"], by="li.na"))
            except Refused:
                return None

        await eventually(accepted, timeout=30)
    assert "on its way" in refused


def test_two_rekeys_at_once_leave_one_new_key(tmp_path):
    """A rekey that loses the race to another attempt reads the winner's key back instead of replacing it."""
    ring = codec.KeyRing.rotate(tmp_path, first=True)
    subjects = codec.SubjectKeys(tmp_path / "subjects.sqlite", ring)
    original = subjects.store.add_subject
    sealed: list = []
    raced: list[bool] = []

    def add_then_race(subject: str, wrapping_key: str, wrapped: bytes) -> None:
        original(subject, wrapping_key, wrapped)
        if subject.endswith("~1") and not raced:  # the other attempt, between this one's archive and replace
            raced.append(True)
            sealed.append(subjects.rekey("complaint-T-2", from_generation=1))
            sealed.append(case.encode_one(Payload(data=b"between")))

    case = codec.EncryptionCodec(ring, subjects, subject="complaint-T-2", workflow_id="complaint-T-2")
    case.encode_one(Payload(data=b"first"))  # the key exists
    subjects.store.add_subject = add_then_race  # type: ignore[method-assign]
    assert subjects.rekey("complaint-T-2", from_generation=1) == 2
    assert sealed[0] == 2 and case.decode_one(sealed[1]).data == b"between"


async def test_the_care_package_after_a_corrected_case_goes_to_the_new_contact(run_worker, peer, tmp_path):
    rules = write_rules(tmp_path / "churn-rules")
    text = (rules / "across_cases.yaml").read_text(encoding="utf-8")
    (rules / "across_cases.yaml").write_text(text.replace("  window: 30d", "  window: 3s"), encoding="utf-8")
    async with run_worker(rules=rules) as redress:
        cid = await open_case(redress, respond_as="li.na", metadata={"customer_profile": "experience_oriented"})
        await redress.correct_contact(cid, ContactCorrection(phone=NEW["phone"], by="customer"))

        async def shredded():
            return any(e.kind == "old_contact_shredded" for e in await redress.timeline(cid))

        await eventually(shredded)
        await redress.resolve(cid, Resolution(agent="li.na", summary="done", root_cause="carrier_delay"))
        await stage_is(redress, cid, "follow_up")
        await redress.customer_feedback(cid, Feedback(score=5))
        care = await eventually(lambda: notices(peer, cid, "care_vip"), timeout=30)
    assert care[0].body["to"]["phone"] == NEW["phone"]
