"""The console in Chromium against the real server: passkeys registered, signed in, and signing money decisions.

The browser's own WebAuthn calls run against a CDP virtual authenticator; the
workflow verifies every assertion itself. Screenshots land in build/screenshots/.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.async_api import FilePayload

from redress.client import Refused
from redress.console.ceremonies import assertion_of
from redress.contract import ApprovalDecision, RemedyProposal
from redress.customers import FlagRequest
from tests.helpers.browser import CHROMIUM, chromium, console, problem, register_and_sign_in, screenshot
from tests.helpers.cases import eventually, open_case, stage_is
from tests.helpers.processes import redress_cli
from tests.helpers.rules import write_rules

PHOTO = b"\xff\xd8\xff\xe0 a dented kettle"
PHOTO_DIGEST = hashlib.sha256(PHOTO).hexdigest()

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="needs Debian's chromium (.ci/run installs it)")


async def test_an_agent_proposes_and_the_team_lead_approves_with_a_passkey_paid_once(run_worker, tmp_path, peer):
    rules = write_rules(tmp_path / "rules")
    async with run_worker(rules=rules) as redress, console(redress, rules) as url, chromium() as browser:
        cid = await open_case(redress, respond_as="li.na", text="The parcel arrived smashed and the kettle is broken.")
        agent = await register_and_sign_in(browser, url, "li.na")
        await agent.goto(f"{url}/cases/{cid}")
        form = agent.locator("#propose")
        await form.locator("select[name=kind]").select_option("refund")
        await form.locator("input[name=amount]").fill("299")
        await form.locator("input[name=reason]").fill("broken in transit")
        await form.locator("button").click()
        assert "P1: awaiting evidence" in await problem(agent)  # damaged goods: the rules want a photo first
        held = agent.locator('#remedies tr[data-proposal="P1"] .held')
        assert "photo" in await held.inner_text()

        # the photo's digest is computed in the browser; the file itself is never sent
        evidence = agent.locator("#add-evidence")
        await evidence.locator("select[name=kind]").select_option("photo")
        await evidence.locator("input[type=file]").set_input_files(
            files=FilePayload(name="dent.jpg", mimeType="image/jpeg", buffer=PHOTO)
        )
        await agent.wait_for_function("document.getElementById('sha256').value.length === 64")
        await evidence.locator("input[name=ref]").fill("https://files.example.com/cases/dent.jpg")
        await evidence.locator("button").click()
        await agent.locator("#flash", has_text="evidence E1 added").wait_for()
        assert PHOTO_DIGEST[:16] in await agent.locator('#evidence tr[data-evidence="E1"]').inner_text()
        await screenshot(agent, "case-evidence")
        status = await redress.status(cid)
        assert status.evidence[0].sha256 == PHOTO_DIGEST and status.evidence[0].by == "li.na"
        assert status.pending_approval and status.pending_approval.proposer_verified  # signed by li.na's passkey

        lead = await register_and_sign_in(browser, url, "wang.fang")
        row = lead.locator("#awaiting tr", has_text=cid)
        await row.wait_for()
        text = await row.inner_text()
        assert "299" in text and "CNY" in text and "li.na" in text
        await screenshot(lead, "inbox")
        await row.locator("a").click()
        await lead.wait_for_url(f"**/cases/{cid}")
        assert "299" in await lead.locator("#terms").inner_text()
        sent = await redress.complaint(cid)
        assert sent is not None and await lead.locator("#complaint-text").inner_text() == sent.text
        await lead.locator('button[data-sign="approve"]').click()
        assert "P1: approved by wang.fang" in await problem(lead)

        await stage_is(redress, cid, "remedy_executed")
        orders = peer.acted("/pay", complaint_id=cid)
        assert len(orders) == 1 and Decimal(str(orders[0].body["amount"])) == Decimal("299")
        remedy = lead.locator('#remedies tr[data-proposal="P1"]')
        await remedy.locator(".tx", has_text="tx-").wait_for()  # the page caught up by itself
        assert await remedy.locator(".decided-by").inner_text() == "wang.fang"
        approved = lead.locator('#timeline tr[data-kind="remedy_approved"]')
        assert "approver:wang.fang" in await approved.inner_text()
        assert "verified signature (passkey)" in await approved.inner_text()
        await screenshot(lead, "case")

        # resolving names a root cause from the rules' list (the form offers exactly those)
        resolve = lead.locator('form[action$="/resolve"]')
        offered = await resolve.locator("select[name=root_cause] option").all_inner_texts()
        assert offered[1:] == (await redress.status(cid)).root_causes
        await resolve.locator("textarea[name=summary]").fill("refunded the broken kettle")
        await resolve.locator("select[name=root_cause]").select_option("carrier_delay")
        await resolve.locator("button").click()
        assert await lead.locator("#flash").inner_text() == "resolved"
        await lead.locator("#root-cause-named", has_text="carrier_delay").wait_for()
        assert await lead.locator("#apology-by").inner_text() == "customer_service"  # who an apology would be from
        assert (await stage_is(redress, cid, "follow_up")).root_cause == "carrier_delay"
        await screenshot(lead, "case-resolved")


async def test_only_the_exact_terms_by_someone_with_the_authority_and_a_live_passkey_count(run_worker, tmp_path, env):
    rules = write_rules(tmp_path / "rules")
    async with run_worker(rules=rules) as redress, console(redress, rules) as url, chromium() as browser:
        cid = await open_case(redress, respond_as="li.na")
        proposal = RemedyProposal(kind="refund", amount=Decimal("299"), currency="CNY", reason="x", proposed_by="li.na")
        assert (await redress.propose_remedy(cid, proposal)).status.value == "awaiting_approval"

        specialist = await register_and_sign_in(browser, url, "sam.taylor")  # limit 200
        await specialist.goto(f"{url}/cases/{cid}")
        assert await specialist.locator('button[data-sign="approve"]').count() == 0
        assert "team_lead" in await specialist.locator("#not-yours").inner_text()
        crafted = await specialist.evaluate(CRAFTED_APPROVAL, {"url": f"/cases/{cid}/sign", "alter": None})
        assert "sam.taylor may not decide P1" in crafted

        lead = await register_and_sign_in(browser, url, "wang.fang")
        await lead.goto(f"{url}/cases/{cid}")
        altered = await lead.evaluate(CRAFTED_APPROVAL, {"url": f"/cases/{cid}/sign", "alter": "29"})
        assert "forged or altered" in altered

        # signed in the browser while the passkey was good, revoked before it arrived: the console has signed
        # its holder out, and the workflow, sent the same assertion directly (anyone may send one), refuses it
        signed = await lead.evaluate(SIGN_ONLY, {"url": f"/cases/{cid}/sign"})
        credential = _credential(rules, "wang.fang")
        code, _, err = await redress_cli(
            env, "keys", "revoke", "wang.fang", "--passkey", credential, "--rules", str(rules)
        )
        assert code == 0, err
        assert "signed out" in await lead.evaluate(SEND_SIGNED, {"url": f"/cases/{cid}/sign"})
        direct = ApprovalDecision(
            proposal_id="P1",
            approver="wang.fang",
            signed_at=datetime.fromisoformat(signed["terms"]["signed_at"]),
            passkey=assertion_of(signed["credential"]),
        )
        with pytest.raises(Refused, match=r"wang\.fang has no such passkey"):
            await redress.approve_remedy(cid, direct)
        await lead.goto(f"{url}/inbox")
        await lead.wait_for_url("**/signin")
        status = await redress.status(cid)
        assert status.stage.value == "awaiting_approval" and status.pending_approval.decided_by is None


async def test_the_case_page_counts_down_with_the_workflow_and_follows_changes_made_elsewhere(
    run_worker, tmp_path, env
):
    rules = write_rules(tmp_path / "rules", first_response="6s", resolution="60s")
    async with run_worker(rules=rules) as redress, console(redress, rules) as url, chromium() as browser:
        # a customer a supervisor flagged for review: staff see why on the case page
        customer = {"id": f"flagged-{uuid.uuid4().hex[:8]}", "language": "zh"}
        await redress.flag_customer(customer["id"], FlagRequest(reason="chargebacks on 3 orders", by="zhang.wei"))
        cid = await open_case(redress, customer=customer)
        page = await register_and_sign_in(browser, url, "wang.fang")
        await page.goto(f"{url}/cases/{cid}")
        assert await page.locator("#claimant-flag").inner_text() == "chargebacks on 3 orders"
        status = await redress.status(cid)
        due = status.deadlines["first_response"].due
        countdown = page.locator('tr[data-deadline="first_response"] .countdown')
        shown = int(await countdown.get_attribute("data-seconds-left") or "nan")
        expected = (due - datetime.now(UTC)).total_seconds()
        assert abs(shown - expected) <= 2.5

        breached = await eventually(lambda: _level_at_least(redress, cid, 1), timeout=30)
        level = page.locator("#escalation-level")
        await level.filter(has_text=str(breached.escalation_level)).wait_for(timeout=10_000)
        assert await page.locator('tr[data-deadline="first_response"]').get_attribute("class") == "late"
        assert (await redress.status(cid)).escalation_level == int(await level.inner_text())

        code, _, err = await redress_cli(
            env,
            "--task-queue",
            redress.task_queue,
            "severity",
            cid,
            "--to",
            "major",
            "--as",
            "zhang.wei",
            "--reason",
            "press",
        )
        assert code == 0, err
        await page.locator("#severity", has_text="major").wait_for(timeout=10_000)

        await page.get_by_role("link", name="中文").click()  # the switch, remembered for this browser
        await page.get_by_role("columnheader", name="剩余时间").wait_for()
        await screenshot(page, "case-zh")
        await page.goto(f"{url}/inbox")
        assert await page.get_by_role("heading", name="收件箱").is_visible()


async def _level_at_least(redress, cid: str, level: int):
    status = await redress.status(cid)
    return status if status.escalation_level >= level else None


def _credential(rules, person: str) -> str:
    from activities.rules.loader import load_rules

    return load_rules(rules).document.approvers[person].passkeys[0].id


# Run in the page: ask the console for a decision's challenge, have the passkey sign it (or, with `alter`,
# the hash of the same terms with another amount), and send the answer. Returns what the console said.
CRAFTED_APPROVAL = """
async ({url, alter}) => {
  const csrf = document.body.dataset.csrf;
  const call = async (path, body) => {
    const r = await fetch(url + path, {method: "POST", headers: {"Content-Type": "application/json",
      "X-CSRF-Token": csrf}, body: JSON.stringify(body)});
    return r.json();
  };
  const proposal = document.querySelector("#decision h2").textContent.split(":")[0].trim();
  const start = await call("/options", {action: "approve", proposal_id: proposal});
  if (!start.publicKey) return JSON.stringify(start);
  const options = PublicKeyCredential.parseRequestOptionsFromJSON(start.publicKey);
  if (alter) {
    const terms = Object.assign({}, start.terms, {amount: alter});
    const keys = Object.keys(terms).sort();
    const text = "{" + keys.map((k) => JSON.stringify(k) + ":" + JSON.stringify(terms[k])).join(",") + "}";
    options.challenge = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  }
  const credential = await navigator.credentials.get({publicKey: options});
  const done = await call("/finish", {ceremony: start.ceremony, credential: credential.toJSON()});
  return JSON.stringify(done);
}
"""

SIGN_ONLY = """
async ({url}) => {
  const csrf = document.body.dataset.csrf;
  const proposal = document.querySelector("#decision h2").textContent.split(":")[0].trim();
  const r = await fetch(url + "/options", {method: "POST", headers: {"Content-Type": "application/json",
    "X-CSRF-Token": csrf}, body: JSON.stringify({action: "approve", proposal_id: proposal})});
  const start = await r.json();
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.publicKey)});
  window.signed = {ceremony: start.ceremony, credential: credential.toJSON()};
  return {terms: start.terms, credential: credential.toJSON()};
}
"""

SEND_SIGNED = """
async ({url}) => {
  const r = await fetch(url + "/finish", {method: "POST", headers: {"Content-Type": "application/json",
    "X-CSRF-Token": document.body.dataset.csrf}, body: JSON.stringify(window.signed)});
  return JSON.stringify(await r.json());
}
"""


async def test_a_crisis_common_remedy_proposed_and_approved_on_the_crisis_page_pays_each_case_once(
    run_worker, tmp_path, peer
):
    import uuid

    rules = write_rules(tmp_path / "rules", first_response="300s", major_first_response="100s")
    across = rules / "across_cases.yaml"
    across.write_text(
        across.read_text(encoding="utf-8").replace("  window: 1h\n  threshold: 20", "  window: 30s\n  threshold: 2"),
        encoding="utf-8",
    )
    sku = f"KETTLE-{uuid.uuid4().hex[:6]}"
    key = f"sku:{sku}"
    async with run_worker(rules=rules) as redress, console(redress, rules) as url, chromium() as browser:
        linked = [
            await open_case(redress, order={"id": f"SO-{uuid.uuid4().hex[:6]}", "value": "300", "product_sku": sku})
            for _ in range(2)
        ]
        agent = await register_and_sign_in(browser, url, "li.na")
        await agent.goto(f"{url}/crises/{key}")
        await agent.locator("#propose").wait_for()  # the watch is declared (the second complaint reached it)
        form = agent.locator("#propose")
        await form.locator("select[name=kind]").select_option("refund")
        await form.locator("input[name=amount]").fill("300")  # beyond a specialist's 200: her passkey is not enough
        await form.locator("input[name=reason]").fill("faulty batch")
        await form.locator("button").click()
        assert "C1: awaiting approval" in await problem(agent)

        lead = await register_and_sign_in(browser, url, "wang.fang")
        await lead.get_by_role("link", name=key).click()  # from the inbox's crises
        await lead.locator('button[data-sign="approve"]').click()
        assert "C1: approved for 2 linked case(s)" in await problem(lead)

        async def all_paid():
            return all(len(peer.acted("/pay", complaint_id=cid)) == 1 for cid in linked)

        await eventually(all_paid)
        for cid in linked:
            remedy = (await redress.status(cid)).remedies[0]
            assert (remedy.amount, remedy.decided_by) == (Decimal("300"), "wang.fang")
