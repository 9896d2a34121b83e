"""Tripwires for known upstream bugs: each test states the bug and fails once the bug is fixed.

sdk-python#1591: an update and an activity completion that reach a worker in the same
workflow task after a worker crash (a timed-out task, then a cold start) are applied in
one order live and in the other on replay, so the history the live worker wrote does not
replay: the case's workflow tasks fail from then on. `make soak` (300 cases, 6 SIGKILLs)
hits it about once per 150 cases; tests/upstream/ holds one such history, recorded by
tests/test_faults.py and decrypted. Recovery: docs/security.md, "Faults".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import DATA_CONVERTER
from workflows.agent_desk import AgentDesk
from workflows.complaint import Complaint
from workflows.crisis import CrisisWatch
from workflows.customer import CustomerRecord

COLD_UPDATE = Path(__file__).parent / "upstream" / "sdk-python-1591-cold-update.json"


@pytest.mark.xfail(strict=True, reason="sdk-python#1591 (temporalio 1.35): remove this mark when it passes")
async def test_a_cold_start_update_beside_an_activity_completion_replays():
    text = COLD_UPDATE.read_text(encoding="utf-8")
    workflow_id = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    replayer = Replayer(workflows=[Complaint, CustomerRecord, CrisisWatch, AgentDesk], data_converter=DATA_CONVERTER)
    result = await replayer.replay_workflow(WorkflowHistory.from_json(workflow_id, text),
                                            raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
