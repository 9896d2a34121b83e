"""The Python client's promises to other services: clear errors, and listing by search attributes."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from redress.client import InvalidInput, NotFound, Refused, list_query
from redress.contract import Feedback, RemedyProposal, ResponseRecord, Withdrawal
from tests.helpers.cases import eventually, open_case
from tests.helpers.processes import redress_cli
from tests.helpers.rules import APPROVER_KEYS


async def test_an_unknown_complaint_is_not_found_for_every_call(run_worker):
    async with run_worker() as redress:
        calls = {
            "status": redress.status("NOPE-1"),
            "timeline": redress.timeline("NOPE-1"),
            "outcome": redress.outcome("NOPE-1"),
            "record_response": redress.record_response("NOPE-1", ResponseRecord(agent="li.na")),
            "withdraw": redress.withdraw("NOPE-1", Withdrawal(by="customer")),
        }
        for name, call in calls.items():
            with pytest.raises(NotFound) as missing:
                await call
            assert missing.value.complaint_id == "NOPE-1" and str(missing.value) == "no complaint NOPE-1", name


async def test_an_ended_case_refuses_messages_but_still_answers_queries(run_worker):
    async with run_worker() as redress:
        cid = await open_case(redress)
        with pytest.raises(Refused) as nothing:
            await redress.approve(cid, "wang.fang", APPROVER_KEYS["wang.fang"])
        assert nothing.value.reason == "no remedy awaits approval"
        await redress.withdraw(cid, Withdrawal(by="customer", reason="sorted it out myself"))
        assert (await redress.outcome(cid)).stage.value == "withdrawn"

        with pytest.raises(Refused) as ended:
            await redress.record_response(cid, ResponseRecord(agent="li.na"))
        assert ended.value.reason == "the case has ended"
        with pytest.raises(Refused, match="the case has ended"):
            await redress.customer_feedback(cid, Feedback(score=5))
        assert (await redress.status(cid)).stage.value == "withdrawn"
        assert [e.kind for e in await redress.timeline(cid)][-1] == "withdrawn"


def test_list_filters_are_checked_before_they_reach_a_query():
    with pytest.raises(InvalidInput, match="filter value"):
        list_query(queue="legal' OR WorkflowId != '")
    query = list_query(task_queue="redress", stage="awaiting_approval", severity="major", breached=True)
    assert query == (
        "WorkflowType = 'Complaint' AND ExecutionStatus = 'Running' AND TaskQueue = 'redress' AND "
        "ComplaintStatus = 'awaiting_approval' AND Severity = 'major' AND Breached = true"
    )


async def test_list_by_queue_severity_stage_and_due_within(run_worker, env):
    """Deadlines here: first response 20 s, resolution 40 s (tests' rules)."""
    async with run_worker() as redress:
        answered = await open_case(redress, respond_as="li.na")  # next deadline: resolution, in 40 s
        legal = await open_case(redress, text="You leaked my personal data")  # urgent, legal; first response in 20 s
        waiting = await open_case(redress, respond_as="li.na")
        await redress.propose_remedy(
            waiting,
            RemedyProposal(
                kind="refund", amount=Decimal("800"), currency="CNY", reason="ruined birthday", proposed_by="li.na"
            ),
        )
        everyone = {answered, legal, waiting}

        async def listed(**filters):
            return {c.complaint_id for c in await redress.list_cases(**filters)}

        async def settled():  # visibility is eventually consistent
            return await listed(stage="awaiting_approval") == {waiting} and await listed() == everyone

        await eventually(settled)
        assert await listed(queue="legal") == {legal}
        assert await listed(severity="urgent") == {legal}
        assert await listed(due_within=timedelta(seconds=30)) == {legal}
        assert await listed(due_within=timedelta(minutes=5)) == everyone
        assert await listed(breached=True) == set()
        cases = await redress.list_cases()
        assert cases[0].complaint_id == legal and cases[0].next_due_name == "first_response"

        code, out, err = await redress_cli(
            env, "--task-queue", redress.task_queue, "list", "--queue", "legal", "--json"
        )
        assert code == 0, err
        assert [(c["complaint_id"], c["severity"], c["next_due_name"]) for c in json.loads(out)] == [
            (legal, "urgent", "first_response")
        ]
        code, out, _ = await redress_cli(env, "--task-queue", redress.task_queue, "list", "--due-within", "5m")
        lines = out.splitlines()
        assert code == 0 and lines[0].split()[:3] == ["complaint", "stage", "severity"] and len(lines) == 4
        assert "\x1b[" not in out and "─" not in out  # piped: plain text
        code, _, err = await redress_cli(env, "list", "--due-within", "soon")
        assert code == 2 and "30m, 4h" in err
