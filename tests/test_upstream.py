"""Tripwires for known upstream bugs: each test states the bug and fails once the bug is fixed.

sdk-python#1591: an update and an activity completion that reach a worker in the same
workflow task after a worker crash (a timed-out task, then a cold start) are applied in
one order live and in the other on replay, so the history the live worker wrote does not
replay: the case's workflow tasks fail from then on. `make soak` (300 cases, 6 SIGKILLs)
hit it about once per 150 cases with the workflow code of commit 33ca1c0, whose update
handlers awaited activities; tests/upstream/ holds one such history, recorded by
tests/test_faults.py and decrypted, and that code, frozen (code_33ca1c0/), to replay it
on. Recovery: docs/security.md, "Faults".
"""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from redress import codec
from tests.upstream.code_33ca1c0.complaint import Complaint as ComplaintAt33ca1c0

REPLAY_CONVERTER = codec.data_converter(worker=True, accept_plain=True)  # the history was decrypted to keep it
COLD_UPDATE = Path(__file__).parent / "upstream" / "sdk-python-1591-cold-update.json"


async def test_a_cold_start_update_beside_an_activity_completion_still_does_not_replay():
    text = COLD_UPDATE.read_text(encoding="utf-8")
    workflow_id = json.loads(text)["events"][0]["workflowExecutionStartedEventAttributes"]["workflowId"]
    replayer = Replayer(workflows=[ComplaintAt33ca1c0], data_converter=REPLAY_CONVERTER)
    result = await replayer.replay_workflow(WorkflowHistory.from_json(workflow_id, text), raise_on_replay_failure=False)
    assert result.replay_failure is not None, (
        "sdk-python#1591 looks fixed: this history now replays. Drop this tripwire and the recovery notes in "
        "docs/security.md."
    )
    # the signature of this bug: on replay the update is applied before the completion the live worker applied first
    assert "Update machine does not handle this event" in str(result.replay_failure), result.replay_failure
