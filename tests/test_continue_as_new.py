"""The long-lived workflows (customer record, crisis watch, agent desk) continue as new with their state.

A dedicated dev server suggests continue-as-new after 40 events instead of 4,096,
so a handful of messages crosses several runs; the state each run hands on is
then checked through the workflows' queries and through behaviour that depends
on it (the repeat count, the crisis count, an agent's streak).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from redress import search_attributes as sa
from redress.contract import Withdrawal, crisis_workflow_id, desk_workflow_id
from redress.crises import ComplaintReported, CrisisRules, CrisisState
from redress.desks import DeskState, RouteRequest
from tests.helpers.cases import complaint, eventually, stage_is
from tests.helpers.serving import data_converter, serving
from worker import temporal_binary
from workflows.agent_desk import AgentDesk
from workflows.crisis import CrisisWatch

SUGGEST_AFTER = 40


@pytest.fixture(scope="module")
async def small_server():
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        data_converter=data_converter(),
        search_attributes=sa.ALL,
        dev_server_extra_args=["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}"],
    ) as environment:
        yield environment


async def runs_of(client: Client, workflow_id: str) -> list[WorkflowExecutionStatus | None]:
    """Every run of a workflow id, oldest first, following the continue-as-new chain in the histories."""
    latest = await client.get_workflow_handle(workflow_id).describe()
    run_id: str | None = latest.raw_description.workflow_execution_info.first_run_id
    statuses = []
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        statuses.append((await handle.describe()).status)
        last = (await handle.fetch_history()).events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return statuses


async def test_customer_record_continues_as_new_and_still_counts_repeats(small_server, tmp_path, peer, rules_dir):
    customer_id = f"can-{uuid.uuid4().hex[:8]}"
    async with serving(small_server.client, rules_dir, tmp_path / "data", peer.url) as redress:
        opened = []
        for n in range(6):  # each case: an update on open and a signal on end, several events each
            data = complaint(
                customer={"id": customer_id, "language": "en", "email": "x@example.com"}, order={"id": f"SO-{n}"}
            )
            await redress.submit(data)
            await stage_is(redress, data["complaint_id"], "acknowledged")
            opened.append(data["complaint_id"])
            if n < 5:
                await redress.withdraw(data["complaint_id"], Withdrawal(by="customer"))
        runs = await eventually(lambda: _several_runs(small_server.client, redress.customer_record_id(customer_id)))
        assert runs[:-1] == [WorkflowExecutionStatus.CONTINUED_AS_NEW] * (len(runs) - 1)
        record = await redress.customer_record(customer_id)
        assert [c.complaint_id for c in record.cases] == opened  # every case survived the hand-over
        assert [c.open for c in record.cases] == [False] * 5 + [True]
        # the carried-over record still drives the rules: the sixth case is a repeat
        assert "repeat" in (await redress.status(opened[-1])).tags
        await redress.withdraw(opened[-1], Withdrawal(by="customer"))


async def _several_runs(client: Client, workflow_id: str):
    runs = await runs_of(client, workflow_id)
    return runs if len(runs) >= 2 else None


async def test_crisis_watch_continues_as_new_with_its_window(small_server, tmp_path, peer, rules_dir):
    key = f"sku:CAN-{uuid.uuid4().hex[:6]}"
    rules = CrisisRules(
        window_seconds=3600, threshold=1000, notify="crisis_team", raise_to="major", rule_version="test"
    )
    async with serving(small_server.client, rules_dir, tmp_path / "data", peer.url) as redress:
        for n in range(25):
            await small_server.client.start_workflow(
                CrisisWatch.run,
                CrisisState(key=key),
                id=crisis_workflow_id(key),
                task_queue=redress.task_queue,
                start_signal="complaint_reported",
                start_signal_args=[ComplaintReported(complaint_id=f"C-{n}", at=datetime.now(UTC), rules=rules)],
            )
        runs = await eventually(lambda: _several_runs(small_server.client, crisis_workflow_id(key)))
        assert WorkflowExecutionStatus.CONTINUED_AS_NEW in runs

        async def counted_all():
            crisis = await redress.crisis(key)
            return crisis if crisis["recent"] == 25 else None

        crisis = await eventually(counted_all)
        assert crisis["declared_at"] is None and crisis["threshold"] == 1000


async def test_agent_desk_continues_as_new_and_keeps_each_agents_streak(small_server, tmp_path, peer, rules_dir):
    queue = f"can-{uuid.uuid4().hex[:6]}"
    async with serving(small_server.client, rules_dir, tmp_path / "data", peer.url) as redress:
        routed = []
        for n in range(20):
            request = RouteRequest(
                complaint_id=f"D-{n}",
                intense=True,
                agents=["ana", "bo"],
                break_after=100,
                break_seconds=60,
                rule_version="test",
            )
            start = WithStartWorkflowOperation(
                AgentDesk.run,
                DeskState(queue=queue),
                id=desk_workflow_id(queue),
                task_queue=redress.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            )
            routed.append(
                await small_server.client.execute_update_with_start_workflow(
                    AgentDesk.route, request, start_workflow_operation=start, id=f"route:D-{n}"
                )
            )
        runs = await runs_of(small_server.client, desk_workflow_id(queue))
        assert len(runs) >= 2 and runs[-1] == WorkflowExecutionStatus.RUNNING
        assert [r.agent for r in routed] == ["ana"] * 20 and [r.streak for r in routed] == list(range(1, 21))
        desk = await small_server.client.get_workflow_handle(desk_workflow_id(queue)).query(AgentDesk.desk)
        assert desk.agents["ana"].streak == 20 and desk.agents["ana"].handled == 20
        assert timedelta(0) < datetime.now(UTC) - desk.last_routed_at < timedelta(minutes=5)
