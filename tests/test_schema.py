"""The JSON Schema export covers the whole contract, and says what other languages must send."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from temporalio.workflow import _Definition

from redress.schemas import MESSAGES, OTHER_WORKFLOWS, QUERIES
from tests.helpers.processes import ROOT
from workflows.agent_desk import AgentDesk
from workflows.complaint import Complaint
from workflows.crisis import CrisisWatch
from workflows.customer import CustomerRecord


def definition_of(workflow_class: type) -> _Definition:
    definition = _Definition.from_class(workflow_class)
    assert definition is not None
    return definition


BUILT_IN_QUERIES = {"__stack_trace", "__enhanced_stack_trace", "__temporal_workflow_metadata"}


def test_the_schema_map_names_exactly_the_updates_signals_and_queries_of_the_workflow():
    definition = definition_of(Complaint)
    assert set(definition.updates) | set(definition.signals) == set(MESSAGES)
    assert set(definition.queries) - BUILT_IN_QUERIES == set(QUERIES)


@pytest.mark.parametrize("workflow_class", [CustomerRecord, CrisisWatch, AgentDesk])
def test_every_message_and_query_of_the_workflows_around_cases_has_a_schema(workflow_class):
    definition = definition_of(workflow_class)
    assert definition.name is not None
    spec = OTHER_WORKFLOWS[definition.name]
    assert set(definition.updates) | set(definition.signals) == set(spec["messages"])
    assert set(definition.queries) - BUILT_IN_QUERIES == set(spec["queries"])


def test_schema_command_writes_the_contract(tmp_path):
    out = tmp_path / "redress.schema.json"
    run = subprocess.run(
        [sys.executable, "-m", "redress", "schema", "--out", str(out)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    schema = json.loads(out.read_text(encoding="utf-8"))
    complaint = schema["workflow"]["input"]
    assert set(complaint["required"]) == {"complaint_id", "customer", "channel", "received_at", "text"}
    channel = complaint["$defs"]["Channel"]["enum"]
    assert "third_party" in channel and "fax" not in channel
    approve = schema["messages"]["approve_remedy"]["argument"]
    assert set(approve["properties"]) == {"proposal_id", "approver", "note", "signed_at", "signature", "passkey"}
    assert schema["queries"]["timeline"]["result"]["type"] == "array"
