"""Every recorded history must replay on the current workflow code.

A history stands for a case running in production when the new code is
deployed; if it no longer replays, the change would break running cases (use
workflow.patched). Histories are recorded by tests/record_histories.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from redress import codec
from worker import SANDBOX, WORKFLOWS

# recorded plain (tests/record_histories.py), replayed as a worker decodes them
REPLAY_CONVERTER = codec.data_converter(worker=True, accept_plain=True)
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_scenario_of_the_recorder_has_a_baseline_history():
    """v10 (1.0) for the scenarios that existed then; a scenario added since, in the version that added it."""
    from tests.record_histories import SCENARIOS

    versioned = [path for path in HISTORIES if path.stem.startswith("v")]
    recorded = {path.stem.split("-", 1)[1].removesuffix("-1") for path in versioned}
    assert recorded == {scenario.__name__ for scenario in SCENARIOS}
    assert all(int(path.stem.split("-", 1)[0][1:]) >= 10 for path in versioned)


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_on_current_code(path: Path):
    text = path.read_text(encoding="utf-8")
    # the recorded workflow id, not the file name: a case signs and checks approvals with its own id
    started = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]
    history = WorkflowHistory.from_json(started.get("workflowId", path.stem), text)
    replayer = Replayer(workflows=WORKFLOWS, workflow_runner=SANDBOX, data_converter=REPLAY_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
