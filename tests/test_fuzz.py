"""Property-based: whatever is thrown at the client, the message validators, the rule loader and a
running case, the answer is a clear refusal or an acceptance, never a crash and never a failed workflow task.

Budget: REDRESS_FUZZ_EXAMPLES (default 60 per property, 25 raw starts and messages on the server);
locally, e.g. REDRESS_FUZZ_EXAMPLES=2000.
"""

from __future__ import annotations

import copy
import os
import re
import string
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.rules import RulesInvalid
from activities.rules.loader import load_rules
from client import InvalidComplaint, validate_complaint
from tests.conftest import ROOT, complaint, open_case, write_rules
from workflows import contract

EXAMPLES = int(os.environ.get("REDRESS_FUZZ_EXAMPLES", "60"))
ON_SERVER = max(10, EXAMPLES // 2 - 5)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False) | st.text(max_size=40)
    | st.sampled_from(["", " ", "0", "-1", "1e309", "NaN", "2026-02-30T25:61:00Z", "2026-11-22T09:30:00", "CNY",
                       "💥", "\x00", "a" * 300, "complaint-x", "general", "refund"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, to aim mutations at."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, prefix + (index,))
    return found


@st.composite
def mutated(draw, base: dict) -> dict:
    """A valid document with a few values replaced, keys removed or unknown keys added."""
    document = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths(document)))
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not where:
            if action == "add" and isinstance(document, dict):
                document[draw(st.text(max_size=10))] = draw(json_values)
            continue
        parent = document
        for part in where[:-1]:
            parent = parent[part]
        if action == "replace":
            parent[where[-1]] = draw(json_values)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
    return document


complaints = st.one_of(mutated(complaint()), json_values)


@FUZZ
@given(complaints)
def test_any_complaint_is_accepted_or_refused_with_the_field_named(data):
    try:
        accepted = validate_complaint(data)
    except InvalidComplaint as refused:
        assert refused.problems
        assert all(re.match(r'^complaint(\.\w+|\[".*?"\])*: \S', p) for p in refused.problems), refused.problems
    else:
        assert isinstance(accepted, contract.ComplaintInput)


MESSAGES: dict[str, type[BaseModel]] = {
    "record_response": contract.ResponseRecord, "propose_remedy": contract.RemedyProposal,
    "approve_remedy": contract.ApprovalDecision, "reject_remedy": contract.ApprovalDecision,
    "resolve": contract.Resolution, "customer_feedback": contract.Feedback,
    "await_customer": contract.CustomerQuestion, "customer_replied": contract.CustomerReply,
    "retriage": contract.Retriage, "change_severity": contract.SeverityChange, "withdraw": contract.Withdrawal,
}
VALID_MESSAGES = {
    "record_response": {"agent": "li.na", "message": "on it"},
    "propose_remedy": {"kind": "refund", "amount": "20", "currency": "CNY", "reason": "x", "proposed_by": "li.na"},
    "approve_remedy": {"proposal_id": "p-1", "approver": "wang.fang", "signed_at": "2026-11-22T09:30:00Z",
                       "signature": "AAAA"},
    "reject_remedy": {"proposal_id": "p-1", "approver": "wang.fang", "note": "no"},
    "resolve": {"agent": "li.na", "summary": "done"}, "customer_feedback": {"score": 4},
    "await_customer": {"agent": "li.na", "question": "which order?"}, "customer_replied": {"message": "SO-1"},
    "retriage": {"by": "li.na", "reason": "new facts"},
    "change_severity": {"severity": "urgent", "by": "wang.fang", "reason": "press"},
    "withdraw": {"by": "customer"},
}
messages = st.sampled_from(sorted(MESSAGES)).flatmap(
    lambda name: st.tuples(st.just(name), st.one_of(mutated(VALID_MESSAGES[name]), json_values)))


@FUZZ
@given(messages)
def test_any_message_is_accepted_or_refused_with_the_field_named(message):
    name, data = message
    try:
        MESSAGES[name].model_validate(data)
    except ValidationError as invalid:
        problems = contract.describe_validation_error(invalid, root="message")
        assert problems and all(re.match(r'^message(\.\w+|\[".*?"\])*: \S', p) for p in problems), problems


SHIPPED = {path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "rules").glob("*.yaml"))}
YAML_NOISE = st.text(alphabet=string.ascii_letters + string.digits + " :-[]{}#&*!|>'\"%@`,.\n\t", max_size=12)


@st.composite
def broken_rules(draw) -> dict[str, str]:
    """The shipped rules with one file damaged the way hurried edits damage YAML."""
    files = dict(SHIPPED)
    name = draw(st.sampled_from(sorted(files)))
    lines = files[name].split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "insert", "splice", "indent"]))
        if action == "delete":
            del lines[at]
        elif action == "duplicate":
            lines.insert(at, lines[at])
        elif action == "insert":
            lines.insert(at, draw(YAML_NOISE))
        elif action == "indent":
            lines[at] = " " * draw(st.integers(1, 3)) + lines[at]
        else:
            column = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:column] + draw(YAML_NOISE) + lines[at][column + draw(st.integers(0, 5)):]
        if not lines:
            lines = [""]
    files[name] = "\n".join(lines)
    return files


@settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken_rules())
def test_any_rule_edit_is_loaded_or_refused_at_file_line_column(files):
    with tempfile.TemporaryDirectory() as folder:
        for name, text in files.items():
            (Path(folder) / name).write_text(text, encoding="utf-8")
        try:
            load_rules(folder)
        except RulesInvalid as refused:
            assert refused.errors
            for error in refused.errors:
                assert re.match(r"^.+\.yaml:\d+:\d+: .+", str(error)) or error.file == folder, str(error)
                assert error.line >= 1 and error.column >= 1


def drawn(strategy, count: int) -> list:
    """Examples from a strategy, for properties checked against the live server (no shrinking there)."""
    found = []

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value):
        found.append(value)

    collect()
    return found[:count]


def task_failures(history) -> list[str]:
    return [str(e.workflow_task_failed_event_attributes.failure.message) for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]


async def test_raw_starts_and_messages_never_fail_a_workflow_task(run_worker, env, tmp_path):
    rules = write_rules(tmp_path / "fuzz-rules")
    async with run_worker(rules=rules) as redress:
        handles = []
        for raw in drawn(complaints, ON_SERVER):
            workflow_id = f"complaint-fuzz-{uuid.uuid4().hex[:10]}"
            handles.append(await env.client.start_workflow("Complaint", raw, id=workflow_id,
                                                           task_queue=redress.task_queue))
        cid = await open_case(redress, respond_as="li.na")
        case = redress.handle(cid)
        outcomes = {"accepted": 0, "refused": 0}
        for name, payload in drawn(messages, ON_SERVER):
            try:
                await case.execute_update(name, payload)
                outcomes["accepted"] += 1
            except WorkflowUpdateFailedError as failed:
                assert isinstance(failed.cause, ApplicationError) and failed.cause.message, failed.cause
                outcomes["refused"] += 1
            except RPCError as error:  # the case may have ended (a fuzzed withdraw): then it says so
                assert any(word in error.message for word in ("completed", "closed", "closing")), error.message
                break
        for name in ("approve_remedy", "reject_remedy"):
            for payload in drawn(json_values, 5):
                try:
                    await case.signal(name, payload)
                except RPCError as error:
                    assert any(word in error.message for word in ("completed", "closed", "closing")), error.message
        if (await case.describe()).status.name == "RUNNING":
            assert (await redress.status(cid)).complaint_id == cid  # still answering after all that
        for handle in [*handles, case]:
            history = await handle.fetch_history()
            assert not task_failures(history), (handle.id, task_failures(history))
        assert outcomes["refused"] > 0  # the fuzz did reach the validators
