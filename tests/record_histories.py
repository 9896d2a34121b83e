"""Record workflow histories for the replay tests: `make histories` (run it when the workflow changes on purpose).

Each scenario runs on a real dev server with a real HTTP peer; its history is
saved as tests/histories/<name>.json. Old files are kept (add, do not replace)
so that histories made by earlier versions of the code keep being replayed:
they stand for cases still running in production. v10 is the 1.0 baseline
(docs/changing-workflows.md): no case runs on anything older.

Histories are recorded without encryption, so they can be read and diffed; the
replay test accepts plain payloads for them (codec.data_converter(accept_plain=True)).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

import httpx
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.complaint_activities import ComplaintActivities
from activities.rules.store import RuleStore
from activities.settings import Settings
from redress import search_attributes as sa
from redress.client import RedressClient
from redress.contract import (
    CUSTOMER_ID_PREFIX,
    WORKFLOW_TYPE,
    ContactCorrection,
    CustomerQuestion,
    CustomerReply,
    Feedback,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Retriage,
    SeverityChange,
    Withdrawal,
    crisis_workflow_id,
    desk_workflow_id,
    workflow_id_for,
)
from tests.helpers.authenticator import SoftAuthenticator, with_passkey
from tests.helpers.cases import complaint, eventually, open_case, stage_is
from tests.helpers.peer import Peer
from tests.helpers.rules import APPROVER_KEYS, write_rules
from tests.test_team_clocks import TIERS as TEAM_CLOCK_TIERS
from worker import build_worker, temporal_binary

ROOT = Path(__file__).resolve().parent.parent

OUT = ROOT / "tests" / "histories"
PASSKEY = SoftAuthenticator()  # wang.fang's, in the directory of the passkey scenario


async def signed_proposal(redress: RedressClient) -> str:
    """A proposer's own signature within her authority (paid at once); an unsigned one above the limit, approved."""
    cid = await open_case(redress, respond_as="li.na", complaint_id="H-signed-proposal")
    await redress.propose(
        cid,
        RemedyProposal(
            kind="refund", amount=Decimal("150"), currency="CNY", reason="double charge", proposed_by="li.na"
        ),
        APPROVER_KEYS["li.na"],
    )
    await stage_is(redress, cid, "remedy_executed")
    await redress.propose_remedy(
        cid,
        RemedyProposal(
            kind="coupon", amount=Decimal("120"), currency="CNY", reason="and for the trouble", proposed_by="li.na"
        ),
    )
    await redress.reject(cid, "wang.fang", APPROVER_KEYS["wang.fang"], note="one remedy is enough")
    await redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="billing_error"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)
    return cid


async def passkey_approval(redress: RedressClient) -> str:
    """An unsigned 299 CNY proposal, a refused passkey over altered terms, then the team lead's passkey approves."""
    from datetime import UTC, datetime

    from redress import signatures
    from redress.client import Refused
    from redress.contract import ApprovalDecision

    cid = await open_case(redress, respond_as="li.na", complaint_id="H-passkey-approval")
    await redress.propose_remedy(
        cid, RemedyProposal(kind="refund", amount=Decimal("299"), currency="CNY", reason="late", proposed_by="li.na")
    )

    def decision(amount: str) -> ApprovalDecision:
        at = datetime.now(UTC).replace(microsecond=0)
        terms = signatures.signed_terms(cid, "P1", "approve", Decimal(amount), "CNY", "wang.fang", at)
        return ApprovalDecision(proposal_id="P1", approver="wang.fang", signed_at=at, passkey=PASSKEY.sign(terms))

    with contextlib.suppress(Refused):
        await redress.approve_remedy(cid, decision("29"))
        raise AssertionError("a passkey over altered terms was accepted")
    await redress.approve_remedy(cid, decision("299"))
    await stage_is(redress, cid, "remedy_executed")
    await redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="billing_error"))
    await redress.customer_feedback(cid, Feedback(score=5))
    await stage_is(redress, cid, "closed", timeout=30)
    return cid


async def approval_reopen_close(redress: RedressClient) -> str:
    cid = await open_case(redress, complaint_id="H-approval-reopen")
    await redress.record_response(cid, ResponseRecord(agent="li.na", message="正在处理"))
    await redress.propose_remedy(
        cid,
        RemedyProposal(kind="refund", amount=Decimal("800"), currency="CNY", reason="goodwill", proposed_by="li.na"),
    )
    await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
    await stage_is(redress, cid, "remedy_executed")
    await redress.resolve(cid, Resolution(agent="li.na", summary="paid", root_cause="billing_error"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=2))
    await stage_is(redress, cid, "reopened")
    await redress.record_response(cid, ResponseRecord(agent="li.na"))
    await redress.resolve(cid, Resolution(agent="li.na", summary="called back", root_cause="process_gap"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)
    return cid


async def evidence_hold(redress: RedressClient) -> str:
    """A refund for damage held for a photo (a document does not release it), released to approval, paid once."""
    import hashlib

    from redress.contract import Evidence

    def evidence(kind: str, content: bytes) -> Evidence:
        return Evidence(kind=kind, ref="s3://evidence/x", sha256=hashlib.sha256(content).hexdigest(), by="customer")

    cid = await open_case(
        redress, respond_as="li.na", complaint_id="H-evidence-hold", text="快递送到时箱子破损，电水壶摔坏了，要求退款。"
    )
    refund = RemedyProposal(kind="refund", amount=Decimal("299"), currency="CNY", reason="破损", proposed_by="li.na")
    await redress.propose_remedy(cid, refund)
    await redress.add_evidence(cid, evidence("document", b"delivery note"))
    await redress.add_evidence(cid, evidence("photo", b"dent"))
    await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
    await stage_is(redress, cid, "remedy_executed")
    await redress.resolve(cid, Resolution(agent="li.na", summary="refunded once", root_cause="carrier_damage"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=4))
    await redress.outcome(cid)
    return cid


async def team_clock_handover(redress: RedressClient) -> str:
    """Logistics' team clock (3 s) warned, missed and escalated with a reassign to quality, whose clock then
    runs; the customer's deadlines (an hour) are met by the response that follows."""
    cid = await open_case(
        redress, complaint_id="H-team-clock", text="The parcel arrived smashed and the kettle is broken."
    )

    async def handed_on() -> bool:
        return "ola:quality" in (await redress.status(cid)).deadlines

    await eventually(handed_on, timeout=20)
    await redress.record_response(cid, ResponseRecord(agent="li.na", message="on it"))
    await redress.resolve(cid, Resolution(agent="li.na", summary="replaced", root_cause="carrier_damage"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)
    return cid


async def escalation_withdrawal(redress: RedressClient) -> str:
    data = complaint(complaint_id="H-escalation-withdraw", text="Parcel arrived damaged", channel="referral")
    cid = data["complaint_id"]
    await redress.submit(data)

    async def escalated():
        return (await redress.status(cid)).escalation_level

    await eventually(escalated)
    await redress.withdraw(cid, Withdrawal(by="customer"))
    await redress.outcome(cid)
    return cid


async def chain_and_retier(redress: RedressClient) -> str:
    data = complaint(complaint_id="H-chain-retier", text="just a question about my order")
    cid = data["complaint_id"]
    await redress.submit(data)

    async def second_level():
        return (await redress.status(cid)).escalation_level >= 2

    await eventually(second_level)
    await redress.change_severity(cid, SeverityChange(severity="urgent", by="zhang.wei", reason="VIP"))
    await redress.record_response(cid, ResponseRecord(agent="li.na"))
    await redress.withdraw(cid, Withdrawal(by="customer"))
    await redress.outcome(cid)
    return cid


CHAIN_TIERS = """
tiers:
  general:
    first_response: 3s
    resolution: 60s
    escalate_to: team_lead
    escalation:
      first_response:
        - {after: -1s, notify: team_lead}
        - {after: 0s, notify: team_lead}
        - {after: 1s, notify: cs_manager, reassign: escalations, page: zhang.wei}
  urgent: {first_response: 60s, resolution: 60s, escalate_to: cs_manager}
  major: {first_response: 1s, resolution: 60s, escalate_to: director}
follow_up: {survey_window: 20s, reopen_below: 3}
"""


async def guarantee_payout(redress: RedressClient) -> str:
    cid = await open_case(
        redress, respond_as="li.na", complaint_id="H-guarantee", text="just a question about my order"
    )

    async def paid():
        return any(r.transaction_id for r in (await redress.status(cid)).remedies)

    await eventually(paid)
    await redress.resolve(cid, Resolution(agent="li.na", summary="coupon sent", root_cause="carrier_delay"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=4))
    await redress.outcome(cid)
    return cid


GUARANTEE_TIERS = """
tiers:
  general:
    first_response: 60s
    resolution: 2s
    escalate_to: team_lead
    escalation:
      resolution:
        - {after: 0s, notify: team_lead, pay: {kind: coupon, amount: 50, currency: CNY}}
  urgent: {first_response: 60s, resolution: 60s, escalate_to: cs_manager}
  major: {first_response: 60s, resolution: 60s, escalate_to: director}
follow_up: {survey_window: 20s, reopen_below: 3}
"""


async def next_update_period(redress: RedressClient) -> str:
    cid = await open_case(redress, complaint_id="H-next-update", text="just a question about my order")
    await redress.record_response(cid, ResponseRecord(agent="li.na", message="Looking into it"))

    async def missed():
        return (await redress.status(cid)).escalation_level >= 1

    await eventually(missed)
    await redress.await_customer(cid, CustomerQuestion(agent="li.na", question="Order number?"))
    await redress.customer_replied(cid, CustomerReply(message="SO-1"))
    await redress.resolve(cid, Resolution(agent="li.na", summary="answered", root_cause="customer_misunderstanding"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)
    return cid


NEXT_UPDATE_TIERS = """
tiers:
  general:
    first_response: 60s
    resolution: 60s
    next_update: 2s
    escalate_to: team_lead
  urgent: {first_response: 60s, resolution: 60s, escalate_to: cs_manager}
  major: {first_response: 60s, resolution: 60s, escalate_to: director}
follow_up: {survey_window: 20s, reopen_below: 3}
"""


async def approval_timeout(redress: RedressClient) -> str:
    cid = await open_case(redress, respond_as="li.na", complaint_id="H-approval-timeout")
    await redress.propose_remedy(
        cid, RemedyProposal(kind="refund", amount=Decimal("800"), currency="CNY", reason="broken", proposed_by="li.na")
    )

    async def rejected():
        return (await redress.status(cid)).remedies[0].status.value == "rejected"

    await eventually(rejected)
    await redress.withdraw(cid, Withdrawal(by="customer"))
    await redress.outcome(cid)
    return cid


async def retriage_case(redress: RedressClient) -> str:
    cid = await open_case(redress, respond_as="li.na", complaint_id="H-retriage", text="请退款")
    await redress.retriage(cid, Retriage(by="zhang.wei", reason="checking the new rules"))
    await redress.withdraw(cid, Withdrawal(by="customer"))
    await redress.outcome(cid)
    return cid


# Extra lines for approval.yaml, per scenario.
async def approver_group(redress: RedressClient) -> list[str]:
    """3000 CNY cash (group large-cash): finance signs, the cs_manager seat times out and climbs to director, who
    signs: paid once; a second case where nobody signs is rejected when the finance seat times out."""
    cash = RemedyProposal(kind="cash", amount=Decimal("3000"), currency="CNY", reason="wedding", proposed_by="li.na")
    climbed = await open_case(redress, respond_as="li.na", complaint_id="H-group-climbed")
    lapsed = await open_case(redress, respond_as="li.na", complaint_id="H-group-lapsed")
    await redress.propose_remedy(climbed, cash)
    await redress.propose_remedy(lapsed, cash)
    await redress.approve(climbed, "liu.yang", APPROVER_KEYS["liu.yang"])

    async def escalated() -> bool:
        return any(e.kind == "approval_escalated" for e in await redress.timeline(climbed))

    await eventually(escalated)
    await redress.approve(climbed, "chen.jing", APPROVER_KEYS["chen.jing"])
    await eventually(lambda: _paid(redress, climbed))

    async def rejected() -> bool:
        return (await redress.status(lapsed)).remedies[0].status.value == "rejected"

    await eventually(rejected)
    for cid in (climbed, lapsed):
        await redress.withdraw(cid, Withdrawal(by="customer"))
        await redress.outcome(cid)
    return [workflow_id_for(climbed), workflow_id_for(lapsed)]


async def contact_correction(redress: RedressClient) -> list[str]:
    """A phone and e-mail corrected on an open case: its first run up to the handover, the run that goes on
    (shreds the earlier key, pays a small refund, is resolved and closes)."""
    cid = await open_case(redress, respond_as="li.na", complaint_id="H-contact")
    first_run = (await redress.handle(cid).describe()).run_id
    await redress.correct_contact(
        cid, ContactCorrection(phone="+86 139 2222 3333", email="lei.li@example.cn", by="li.na")
    )

    async def shredded() -> bool:
        return any(e.kind == "old_contact_shredded" for e in await redress.timeline(cid))

    await eventually(shredded)
    await redress.propose_remedy(
        cid, RemedyProposal(kind="refund", amount=Decimal("30"), currency="CNY", reason="late", proposed_by="li.na")
    )
    await eventually(lambda: _paid(redress, cid))
    await redress.resolve(cid, Resolution(agent="li.na", summary="refunded", root_cause="carrier_delay"))
    await stage_is(redress, cid, "follow_up")
    await redress.customer_feedback(cid, Feedback(score=5))
    await redress.outcome(cid)
    return [f"{workflow_id_for(cid)}@{first_run}", workflow_id_for(cid)]


APPROVAL_EXTRA = {
    "approval_timeout": "  decision_timeout: 1s\n  fallback: {action: reject}\n",
    "approver_group": "  decision_timeout: 2s\n",
}


async def refused_input(redress: RedressClient) -> str:
    data = complaint(complaint_id="H-refused", channel="fax")
    await redress.client.start_workflow(
        WORKFLOW_TYPE, data, id=workflow_id_for("H-refused"), task_queue=redress.task_queue
    )
    await redress.outcome("H-refused")
    return "H-refused"


async def customer_churn(redress: RedressClient) -> str:
    """A customer record: two complaints (a repeat count), one closed, its churn watch running out, a purchase."""
    who = {"id": "H-customer", "language": "en"}
    first = await open_case(
        redress,
        complaint_id="H-churn-1",
        customer=who,
        respond_as="li.na",
        metadata={"customer_profile": "price_sensitive"},
    )
    await redress.resolve(first, Resolution(agent="li.na", summary="fixed", root_cause="product_defect"))
    await stage_is(redress, first, "follow_up")
    await redress.customer_feedback(first, Feedback(score=4))
    await redress.outcome(first)

    async def care_sent():
        return (await redress.customer_record(who["id"])).care_sent

    await eventually(care_sent, timeout=30)
    second = await open_case(redress, complaint_id="H-churn-2", customer=who)
    await redress.customer_purchased(who["id"], order_id="SO-AGAIN")
    await redress.withdraw(second, Withdrawal(by="customer"))
    await redress.outcome(second)
    await eventually(lambda: _record_settled(redress, who["id"]))
    return redress.customer_record_id(who["id"])


async def claimant_review(redress: RedressClient) -> list[str]:
    """Two coupons paid to a customer, the third complaint flags them (the rules flag at two payouts here), a
    small coupon on it awaits an approver; a supervisor clears the flag."""
    from redress.customers import FlagClearance

    who = {"id": "H-claimant", "language": "en"}
    coupon = RemedyProposal(kind="coupon", amount=Decimal("20"), currency="CNY", reason="late", proposed_by="li.na")
    for number in (1, 2):
        cid = await open_case(redress, complaint_id=f"H-claims-{number}", customer=who, respond_as="li.na")
        await redress.propose_remedy(cid, coupon)
        await stage_is(redress, cid, "remedy_executed")

    async def paid_twice() -> bool:
        return len((await redress.customer_record(who["id"])).payouts) == 2

    await eventually(paid_twice)
    flagged = await open_case(redress, complaint_id="H-claims-3", customer=who, respond_as="li.na")
    await redress.propose_remedy(flagged, coupon)
    await redress.approve(flagged, "sam.taylor", APPROVER_KEYS["sam.taylor"])
    await stage_is(redress, flagged, "remedy_executed")
    await redress.clear_customer_flag(who["id"], FlagClearance(by="wang.fang", note="reviewed"))
    await redress.withdraw(flagged, Withdrawal(by="customer"))
    await redress.outcome(flagged)
    return [workflow_id_for(flagged), redress.customer_record_id(who["id"])]


async def _record_settled(redress: RedressClient, customer_id: str) -> bool:
    record = await redress.customer_record(customer_id)
    return record.last_purchase_at is not None and not any(c.open for c in record.cases)


async def crisis_common_remedy(redress: RedressClient) -> list[str]:
    """A crisis declared at the threshold (3 here), a late joiner, a common remedy approved once."""
    cids = []
    for number in range(1, 5):
        cids.append(
            await open_case(
                redress,
                complaint_id=f"H-crisis-{number}",
                respond_as="li.na",
                customer={"id": f"H-crisis-customer-{number}", "language": "en"},
                order={"id": f"SO-C{number}", "value": "300", "product_sku": "H-KETTLE"},
            )
        )
    key = "sku:H-KETTLE"

    async def declared_and_linked():
        watch = await redress.crisis(key)
        return watch["declared_at"] and len(watch["linked"]) == 4

    await eventually(declared_and_linked)
    await redress.propose_common_remedy(
        key,
        RemedyProposal(
            kind="refund", amount=Decimal("300"), currency="CNY", reason="faulty batch", proposed_by="li.na"
        ),
    )
    await redress.approve_common_remedy(key, "wang.fang", APPROVER_KEYS["wang.fang"])
    await eventually(lambda: _paid(redress, cids[0]))
    return [crisis_workflow_id(key), workflow_id_for(cids[0])]


async def _paid(redress: RedressClient, cid: str) -> bool:
    return any(r.status.value == "executed" for r in (await redress.status(cid)).remedies)


async def agent_desk_break(redress: RedressClient) -> list[str]:
    """Five intense complaints in a row for the first agent, her break prompt, the sixth to her colleague."""
    angry = "I am FURIOUS. You charged me twice, this is disgusting and pathetic!!! Refund me now."
    cids = [await open_case(redress, complaint_id=f"H-desk-{n}", text=angry) for n in range(1, 7)]
    return [desk_workflow_id("billing"), workflow_id_for(cids[-1])]


async def bad_signals(redress: RedressClient) -> list[str]:
    """Junk signals (ignored and noted), an approval by signal, a bad purchase signal to the customer's record."""
    who = {"id": "H-signals-customer", "language": "en"}
    cid = await open_case(redress, complaint_id="H-bad-signals", respond_as="li.na", customer=who)
    handle = redress.handle(cid)
    await handle.signal("approve_remedy", [1, 2])
    await handle.signal("crisis_declared", {"crisis_id": 5})
    await redress.propose_remedy(
        cid,
        RemedyProposal(kind="refund", amount=Decimal("800"), currency="CNY", reason="goodwill", proposed_by="li.na"),
    )
    decision = await redress.sign_decision(cid, "approve", "wang.fang", APPROVER_KEYS["wang.fang"])
    await handle.signal("approve_remedy", decision)
    await stage_is(redress, cid, "remedy_executed")
    await redress.client.get_workflow_handle(redress.customer_record_id(who["id"])).signal(
        "customer_purchased", "yesterday"
    )
    await redress.withdraw(cid, Withdrawal(by="customer"))
    await redress.outcome(cid)
    await eventually(lambda: _record_settled_without_purchase(redress, who["id"]))
    return [workflow_id_for(cid), redress.customer_record_id(who["id"])]


async def _record_settled_without_purchase(redress: RedressClient, customer_id: str) -> bool:
    return not any(c.open for c in (await redress.customer_record(customer_id)).cases)


RULE_EDITS = {  # scenario -> (file, text, replacement) in its rules
    "customer_churn": ("across_cases.yaml", "  window: 30d", "  window: 2s"),
    "crisis_common_remedy": ("across_cases.yaml", "  window: 1h\n  threshold: 20", "  window: 1m\n  threshold: 3"),
    "claimant_review": ("across_cases.yaml", "customer.payouts_90d >= 4", "customer.payouts_90d >= 2"),
}
AGENT_DESKS = {"agent_desk_break"}  # scenarios that run with the shipped agent desks


SCENARIOS: dict[Callable[[RedressClient], Awaitable[str | list[str]]], str] = {  # scenario -> its tiers
    signed_proposal: CHAIN_TIERS,
    passkey_approval: CHAIN_TIERS,
    approval_reopen_close: CHAIN_TIERS,
    evidence_hold: CHAIN_TIERS,
    team_clock_handover: TEAM_CLOCK_TIERS,  # logistics 3 s, then reassigned to quality
    escalation_withdrawal: CHAIN_TIERS,
    refused_input: CHAIN_TIERS,
    chain_and_retier: CHAIN_TIERS,
    guarantee_payout: GUARANTEE_TIERS,
    next_update_period: NEXT_UPDATE_TIERS,
    approval_timeout: CHAIN_TIERS,
    approver_group: CHAIN_TIERS,
    contact_correction: CHAIN_TIERS,
    retriage_case: CHAIN_TIERS,
    customer_churn: CHAIN_TIERS,
    claimant_review: CHAIN_TIERS,
    crisis_common_remedy: CHAIN_TIERS,
    agent_desk_break: CHAIN_TIERS,
    bad_signals: CHAIN_TIERS,
}


async def main() -> None:
    """python tests/record_histories.py VERSION [SCENARIO ...] (all scenarios when none is named)."""
    version = sys.argv[1] if len(sys.argv) > 1 else "v1"
    wanted = set(sys.argv[2:]) or {scenario.__name__ for scenario in SCENARIOS}
    with tempfile.TemporaryDirectory() as tmp, Peer() as peer:
        async with await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_binary(),
            data_converter=pydantic_data_converter,
            search_attributes=sa.ALL,
        ) as env:
            for scenario, tiers in SCENARIOS.items():
                if scenario.__name__ not in wanted:
                    continue
                rules = write_rules(
                    Path(tmp) / scenario.__name__, tiers_yaml=tiers, agent_desks=scenario.__name__ in AGENT_DESKS
                )
                extra = APPROVAL_EXTRA.get(scenario.__name__)
                if extra:
                    approval = rules / "approval.yaml"
                    text = approval.read_text(encoding="utf-8")
                    approval.write_text(text.replace("  free_kinds:", extra + "  free_kinds:"), encoding="utf-8")
                if scenario.__name__ == passkey_approval.__name__:
                    with_passkey(rules, "wang.fang", PASSKEY)
                if scenario.__name__ in RULE_EDITS:
                    file, text, replacement = RULE_EDITS[scenario.__name__]
                    path = rules / file
                    path.write_text(path.read_text(encoding="utf-8").replace(text, replacement), encoding="utf-8")
                settings = Settings(
                    rules_dir=rules, data_dir=Path(tmp), notify_url=f"{peer.url}/notify", payment_url=f"{peer.url}/pay"
                )
                async with httpx.AsyncClient() as http:
                    activities = ComplaintActivities(settings, http, RuleStore(rules), env.client)
                    async with build_worker(env.client, activities, task_queue=scenario.__name__):
                        redress = RedressClient(env.client, task_queue=scenario.__name__)
                        recorded = await scenario(redress)  # workflow ids, or a complaint id
                        ids = (
                            recorded
                            if isinstance(recorded, list)
                            else [recorded if recorded.startswith(CUSTOMER_ID_PREFIX) else workflow_id_for(recorded)]
                        )
                        histories = [  # "id@run" names an earlier run of the workflow
                            await env.client.get_workflow_handle(
                                i.split("@")[0], run_id=i.split("@")[1] if "@" in i else None
                            ).fetch_history()
                            for i in ids
                        ]
                for number, history in enumerate(histories):
                    suffix = f"-{number}" if number else ""
                    target = OUT / f"{version}-{scenario.__name__}{suffix}.json"
                    target.write_text(history.to_json(), encoding="utf-8")
                    print(f"recorded {target.relative_to(ROOT)} ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
