"""Hot reload: a valid edit is the version for new complaints; running ones keep theirs; a bad edit changes nothing."""

from __future__ import annotations

import asyncio

from activities.rules.store import RuleStore
from tests.helpers.cases import complaint, eventually, notices, stage_is
from tests.helpers.rules import write_rules


def edit(rules, old: str, new: str) -> None:
    path = rules / "routing.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_a_valid_edit_changes_the_next_complaint_not_the_running_one(run_worker, rules_dir):
    async with run_worker() as redress:
        first = complaint(text="订单重复扣费，请退款")
        await redress.submit(first)
        before = await stage_is(redress, first["complaint_id"], "acknowledged")
        assert before.queue == "billing"

        edit(rules_dir, "set: {category: billing, queue: billing}", "set: {category: billing, queue: refunds}")
        await asyncio.sleep(0.7)  # the test store looks every 0.5 s
        second = complaint(text="订单重复扣费，请退款")
        await redress.submit(second)
        after = await stage_is(redress, second["complaint_id"], "acknowledged")
        running = await redress.status(first["complaint_id"])
    assert after.queue == "refunds" and after.rule_version != before.rule_version
    assert running.queue == "billing" and running.rule_version == before.rule_version


def test_an_invalid_edit_keeps_the_last_good_version_and_says_where(tmp_path):
    rules = write_rules(tmp_path / "rules")
    store = RuleStore(rules, tmp_path / "versions", check_seconds=0)
    good = store.current.version
    edit(rules, 'when: channel == "referral"', 'when: channel == = "referral"')
    assert store.latest().version == good
    [problem] = store.refused
    line = next(
        n
        for n, text in enumerate((rules / "routing.yaml").read_text(encoding="utf-8").splitlines(), 1)
        if "channel == =" in text
    )
    assert str(problem).startswith(f"{rules / 'routing.yaml'}:{line}:") and "CEL syntax" in problem.message

    edit(rules, 'when: channel == = "referral"', 'when: channel == "referral" && true')
    fixed = store.latest()
    assert fixed.version != good and store.refused == []


def test_pinned_versions_stay_loadable_after_edits_and_restarts(tmp_path):
    rules = write_rules(tmp_path / "rules")
    versions = tmp_path / "versions"
    old = RuleStore(rules, versions, check_seconds=0).current.version
    edit(rules, "set: {category: billing, queue: billing}", "set: {category: billing, queue: refunds}")
    restarted = RuleStore(rules, versions, check_seconds=0)  # a new worker process, after the edit
    assert restarted.current.version != old
    pinned = restarted.get(old)
    assert pinned.version == old
    assert next(r for r in pinned.document.rules if r.name == "billing-error").set.queue == "billing"
    assert sorted(p.name for p in versions.iterdir()) == sorted([old, restarted.current.version])


async def test_retriage_moves_a_running_case_to_the_new_version_and_its_timers_follow(run_worker, rules_dir, peer):
    from redress.contract import Retriage

    async with run_worker() as redress:
        data = complaint(text="订单重复扣费，请退款")
        cid = data["complaint_id"]
        await redress.submit(data)
        before = await stage_is(redress, cid, "acknowledged")
        edit(rules_dir, "set: {category: billing, queue: billing}", "set: {category: billing, queue: refunds}")
        tiers = rules_dir / "tiers.yaml"
        tiers.write_text(
            tiers.read_text(encoding="utf-8").replace("general: {first_response: 20s", "general: {first_response: 3s"),
            encoding="utf-8",
        )
        await asyncio.sleep(0.7)

        status = await redress.retriage(cid, Retriage(by="zhang.wei", reason="new refund queue"))
        assert status.rule_version != before.rule_version and status.queue == "refunds"
        due = status.deadlines["first_response"].due
        assert (due - before.deadlines["first_response"].due).total_seconds() == -17
        event = next(e for e in await redress.timeline(cid) if e.kind == "retriaged")
        assert event.data["previous"]["rule_version"] == before.rule_version
        assert event.data["rule_version"] == status.rule_version and event.actor == "supervisor:zhang.wei"
        sent = await eventually(lambda: notices(peer, cid, "escalation"), timeout=10)  # the new, earlier deadline
        missed = next(e for e in await redress.timeline(cid) if e.kind == "deadline_missed")
    assert sent and missed.at >= due and (missed.at - due).total_seconds() < 5


def test_a_restart_after_a_bad_edit_runs_the_last_published_version(tmp_path):
    import pytest

    from activities.rules import RulesInvalid

    rules = write_rules(tmp_path / "rules")
    versions = tmp_path / "versions"
    good = RuleStore(rules, versions).current.version
    edit(rules, 'when: channel == "referral"', 'when: channel == = "referral"')
    restarted = RuleStore(rules, versions)
    assert restarted.current.version == good and "CEL syntax" in restarted.refused[0].message
    with pytest.raises(RulesInvalid):  # a first start has nothing good to fall back on
        RuleStore(rules, tmp_path / "empty-store")
