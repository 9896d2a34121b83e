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

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.rules import RulesInvalid
from activities.rules.loader import load_rules
from redress import codec, contract
from redress.client import InvalidComplaint, validate_complaint
from tests.helpers.cases import complaint, eventually, open_case
from tests.helpers.processes import ROOT
from tests.helpers.rules import write_rules

EXAMPLES = int(os.environ.get("REDRESS_FUZZ_EXAMPLES", "60"))
ON_SERVER = max(10, EXAMPLES // 2 - 5)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e309",
            "NaN",
            "2026-02-30T25:61:00Z",
            "2026-11-22T09:30:00",
            "CNY",
            "💥",
            "\x00",
            "a" * 300,
            "complaint-x",
            "general",
            "refund",
        ]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON document, to aim mutations at."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
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
        assert all(re.match(r"^complaint(\.\w+|\[a key of \d+ characters\])*: \S", p) for p in refused.problems), (
            refused.problems
        )
    else:
        assert isinstance(accepted, contract.ComplaintInput)


MESSAGES: dict[str, type[BaseModel]] = {
    "record_response": contract.ResponseRecord,
    "propose_remedy": contract.RemedyProposal,
    "approve_remedy": contract.ApprovalDecision,
    "reject_remedy": contract.ApprovalDecision,
    "resolve": contract.Resolution,
    "customer_feedback": contract.Feedback,
    "await_customer": contract.CustomerQuestion,
    "customer_replied": contract.CustomerReply,
    "retriage": contract.Retriage,
    "change_severity": contract.SeverityChange,
    "withdraw": contract.Withdrawal,
    "add_evidence": contract.Evidence,
}
VALID_MESSAGES: dict[str, dict[str, Any]] = {
    "record_response": {"agent": "li.na", "message": "on it"},
    "propose_remedy": {"kind": "refund", "amount": "20", "currency": "CNY", "reason": "x", "proposed_by": "li.na"},
    "approve_remedy": {
        "proposal_id": "p-1",
        "approver": "wang.fang",
        "signed_at": "2026-11-22T09:30:00Z",
        "signature": "AAAA",
    },
    "reject_remedy": {"proposal_id": "p-1", "approver": "wang.fang", "note": "no"},
    "resolve": {"agent": "li.na", "summary": "done", "root_cause": "billing_error"},
    "customer_feedback": {"score": 4},
    "await_customer": {"agent": "li.na", "question": "which order?"},
    "customer_replied": {"message": "SO-1"},
    "retriage": {"by": "li.na", "reason": "new facts"},
    "change_severity": {"severity": "urgent", "by": "wang.fang", "reason": "press"},
    "withdraw": {"by": "customer"},
    "add_evidence": {"kind": "photo", "ref": "s3://e/1", "sha256": "ab" * 32, "by": "customer", "note": "dent"},
}
messages = st.sampled_from(sorted(MESSAGES)).flatmap(
    lambda name: st.tuples(st.just(name), st.one_of(mutated(VALID_MESSAGES[name]), json_values))
)


@FUZZ
@given(messages)
def test_any_message_is_accepted_or_refused_with_the_field_named(message):
    name, data = message
    try:
        MESSAGES[name].model_validate(data)
    except ValidationError as invalid:
        problems = contract.describe_validation_error(invalid, root="message")
        assert problems and all(re.match(r"^message(\.\w+|\[a key of \d+ characters\])*: \S", p) for p in problems), (
            problems
        )


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
            lines[at] = lines[at][:column] + draw(YAML_NOISE) + lines[at][column + draw(st.integers(0, 5)) :]
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


def test_a_tag_the_yaml_library_trips_over_is_refused_with_a_position(tmp_path):
    """Found by the fuzz: a file starting `!# ...` made ruamel raise a KeyError from the loader."""
    for name, text in SHIPPED.items():
        (tmp_path / name).write_text(("!" + text) if name == "across_cases.yaml" else text, encoding="utf-8")
    try:
        load_rules(tmp_path)
    except RulesInvalid as refused:
        assert all(re.match(r"^.+across_cases\.yaml:\d+:\d+: .+", str(e)) for e in refused.errors), refused.errors
    else:
        raise AssertionError("a damaged rule file was accepted")


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
    """Workflow tasks that failed, except the server's UnhandledCommand.

    That one is not a failure of our code: a workflow that completes while a signal
    arrives has its completion turned down by the server, which hands it a new task with
    the signal (it is how Temporal keeps a signal from being lost); the run goes on.
    """
    unhandled = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
    return [
        str(e.workflow_task_failed_event_attributes.failure.message) or "(no message)"
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
        and e.workflow_task_failed_event_attributes.cause != unhandled
    ]


NOW = "2026-11-22T09:30:00Z"
CRISIS_RULES = {"window_seconds": 60, "threshold": 3, "notify": "crisis_team", "raise_to": "major", "rule_version": "v"}
# Every signal and update of every workflow type, with a valid message to mutate (redress/schemas.py lists them)
OTHER_MESSAGES: dict[str, dict[str, tuple[str, dict]]] = {
    "Complaint": {
        "approve_remedy": ("signal", VALID_MESSAGES["approve_remedy"]),
        "reject_remedy": ("signal", VALID_MESSAGES["reject_remedy"]),
        "crisis_declared": ("signal", {"crisis_id": "sku:X", "raise_to": "major", "reason": "many"}),
        "data_exported": ("signal", {"by": "li.na", "cases": 2}),
        "crisis_remedy": (
            "signal",
            {
                "crisis_id": "sku:X",
                "proposal_id": "C1",
                "kind": "cash",
                "amount": "99999",
                "currency": "CNY",
                "reason": "x",
                "proposed_by": "li.na",
            },
        ),
    },
    "CustomerRecord": {
        "complaint_opened": ("update", {"complaint_id": "c1", "received_at": NOW, "window_seconds": 60}),
        "complaint_ended": (
            "signal",
            {
                "complaint_id": "c1",
                "stage": "closed",
                "ended_at": NOW,
                "customer": {"id": "x"},
                "channel": "app",
                "churn_window_seconds": 60,
            },
        ),
        "customer_purchased": ("signal", {"at": NOW, "order_id": "SO-1"}),
        "remedy_paid": (
            "signal",
            {
                "complaint_id": "c1",
                "proposal_id": "P1",
                "kind": "refund",
                "amount": "20",
                "currency": "CNY",
                "at": NOW,
                "with_evidence": False,
                "window_seconds": 60,
            },
        ),
        "flag_customer": ("update", {"reason": "many payouts", "by": "wang.fang"}),
        "clear_flag": ("update", {"by": "wang.fang", "note": "reviewed", "for_seconds": 60}),
        "data_exported": ("signal", {"by": "li.na", "cases": 2, "keep_seconds": 60}),
    },
    "CrisisWatch": {
        "complaint_reported": ("signal", {"complaint_id": "c1", "at": NOW, "rules": CRISIS_RULES}),
        "propose_common_remedy": ("update", VALID_MESSAGES["propose_remedy"]),
        "approve_common_remedy": ("update", VALID_MESSAGES["approve_remedy"]),
    },
    "AgentDesk": {
        "route": (
            "update",
            {
                "complaint_id": "c1",
                "intense": True,
                "agents": ["li.na"],
                "break_after": 5,
                "break_seconds": 60,
                "rule_version": "v",
            },
        ),
    },
}
VALID_INPUTS = {
    "CustomerRecord": {"customer_id": "fuzz"},
    "CrisisWatch": {"key": "sku:FUZZ"},
    "AgentDesk": {"queue": "fuzz"},
}
ID_PREFIXES = {"CustomerRecord": "customer-", "CrisisWatch": "crisis-", "AgentDesk": "desk-"}


async def send(handle, kind: str, name: str, payload) -> str:
    """Send one message; the answer must be an acceptance or a refusal with a reason, never anything else."""
    try:
        if kind == "signal":
            await handle.signal(name, payload)
        else:
            await handle.execute_update(name, payload)
        return "accepted"
    except WorkflowUpdateFailedError as failed:
        assert isinstance(failed.cause, ApplicationError) and failed.cause.message, failed.cause
        return "refused"
    except RPCError as error:  # the workflow may have ended (a fuzzed withdraw, a refused input): then it says so
        assert any(word in error.message for word in ("completed", "closed", "closing", "failed")), error.message
        return "ended"


async def test_raw_starts_and_messages_never_fail_a_workflow_task(run_worker, env, tmp_path):
    """Arbitrary JSON at every input, update and signal of all four workflow types: zero failed workflow tasks."""
    rules = write_rules(tmp_path / "fuzz-rules")
    async with run_worker(rules=rules) as redress:
        queue, records = redress.task_queue, f"{redress.task_queue}-records"
        handles = []
        for raw in drawn(complaints, ON_SERVER):
            handles.append(
                await env.client.start_workflow(
                    "Complaint", raw, id=f"complaint-fuzz-{uuid.uuid4().hex[:10]}", task_queue=queue
                )
            )
        for workflow_type, valid in VALID_INPUTS.items():
            for raw in drawn(st.one_of(mutated(valid), json_values), max(5, ON_SERVER // 3)):
                handles.append(
                    await env.client.start_workflow(
                        workflow_type,
                        raw,
                        id=f"{ID_PREFIXES[workflow_type]}fuzz-{uuid.uuid4().hex[:10]}",
                        task_queue=records,
                    )
                )
        cid = await open_case(redress, respond_as="li.na")
        case = redress.handle(cid)
        outcomes = {"accepted": 0, "refused": 0, "ended": 0}
        for name, payload in drawn(messages, ON_SERVER):
            outcomes[await send(case, "update", name, payload)] += 1
        targets = {"Complaint": case}
        for workflow_type, valid in VALID_INPUTS.items():
            targets[workflow_type] = await env.client.start_workflow(
                workflow_type,
                {**valid, **({"key": f"sku:{uuid.uuid4().hex[:6]}"} if "key" in valid else {})},
                id=f"{ID_PREFIXES[workflow_type]}fuzz-target-{uuid.uuid4().hex[:10]}",
                task_queue=records,
            )
        for workflow_type, handlers in OTHER_MESSAGES.items():
            for name, (kind, valid) in handlers.items():
                for payload in drawn(st.one_of(mutated(valid), json_values), max(5, ON_SERVER // 3)):
                    outcomes[await send(targets[workflow_type], kind, name, payload)] += 1
        if (await case.describe()).status.name == "RUNNING":
            assert (await redress.status(cid)).complaint_id == cid  # still answering after all that
        for handle in [*handles, *targets.values()]:
            history = await handle.fetch_history()
            assert not task_failures(history), (handle.id, task_failures(history))
        assert outcomes["refused"] > 0  # the fuzz did reach the validators


async def test_the_junk_that_once_jammed_a_case_is_noted_and_the_case_goes_on(run_worker, env, tmp_path):
    """Each message here used to fail the workflow task for good; now each is refused and the case answers."""
    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")
        case = redress.handle(cid)
        await case.signal(
            "crisis_remedy",
            {
                "crisis_id": "sku:X",
                "proposal_id": "C1",
                "kind": "bogus",
                "amount": "99999",
                "currency": "CNY",
                "reason": "x",
                "proposed_by": "x",
            },
        )
        await case.signal(
            "approve_remedy",
            {"proposal_id": "P1", "approver": "wang.fang", "signed_at": "2026-11-22T09:30:00", "signature": "AAAA"},
        )  # no zone
        await case.signal(
            "crisis_remedy",
            {
                "crisis_id": "sku:X",
                "proposal_id": "C1",
                "kind": "cash",
                "amount": "99999",
                "currency": "CNY",
                "reason": "x",
                "proposed_by": "x",
            },
        )
        record = await env.client.start_workflow(
            "CustomerRecord",
            {"customer_id": "junk"},
            id=f"customer-junk-{uuid.uuid4().hex[:8]}",
            task_queue=f"{redress.task_queue}-records",
        )
        await record.signal(
            "complaint_ended",
            {
                "complaint_id": "c1",
                "stage": "closed",
                "ended_at": NOW,
                "customer": {"id": "x"},
                "channel": "app",
                "churn_window_seconds": 1e300,
            },
        )
        huge = complaint(received_at="9999-12-31T23:00:00+00:00")
        start = await env.client.start_workflow(
            "Complaint", huge, id=f"complaint-{huge['complaint_id']}", task_queue=redress.task_queue
        )
        # states that read as valid but that the long-lived workflows did arithmetic on: naive or far dates
        records = f"{redress.task_queue}-records"
        states = [
            ("CustomerRecord", "customer-", {"customer_id": "x", "keep_until": "2030-01-01T00:00:00"}),
            ("CrisisWatch", "crisis-", {"key": "k", "rules": CRISIS_RULES, "last_seen": "9999-12-31T23:59:59+00:00"}),
            ("CrisisWatch", "crisis-", {"key": "k", "rules": CRISIS_RULES, "declared_at": NOW}),
            ("AgentDesk", "desk-", {"queue": "q", "agents": {"zz": {"on_break_until": "2030-01-01T00:00"}}}),
        ]
        long_lived = [
            await env.client.start_workflow(kind, state, id=f"{prefix}junk-{uuid.uuid4().hex[:8]}", task_queue=records)
            for kind, prefix, state in states
        ]
        # an input that names a payload key nobody holds: refused, not a task failing for ever
        plain = await Client.connect(env.client.service_client.config.target_host)
        forged_id = f"complaint-forged-{uuid.uuid4().hex[:8]}"
        forged = await plain.start_workflow(
            "Complaint",
            RawValue(
                Payload(
                    metadata={"encoding": codec.ENCODING, codec.KEY_ID: b"k-none", codec.BOUND: forged_id.encode()},
                    data=b"\x00" * 64,
                )
            ),
            id=forged_id,
            task_queue=redress.task_queue,
        )

        async def noted():
            kinds = [e.kind for e in await redress.timeline(cid)]
            return kinds.count("signal_refused") + kinds.count("decision_refused") >= 3

        await eventually(noted)
        timeline = await redress.timeline(cid)
        refused = [e.detail for e in timeline if e.kind in ("signal_refused", "decision_refused")]
        assert any("signal.kind" in r for r in refused)
        assert any("signal.signed_at" in r for r in refused)
        assert any("not linked to crisis sku:X" in r for r in refused)
        assert (await redress.status(cid)).remedies == []  # nothing was paid
        assert (await start.result())["stage"] == "refused"
        assert await record.query("record")  # still answering
        for handle in long_lived[:2] + long_lived[3:]:  # refused by their models: the run ends with the reason
            with pytest.raises(WorkflowFailureError):
                await handle.result()
        await eventually(lambda: _worked(long_lived[2]))  # declared with no case linked: it just goes on
        forged_result = await env.client.get_workflow_handle(forged_id).result()  # read it with our codec
        assert forged_result["stage"] == "refused" and "k-none" in forged_result["problems"][0]
        for handle in (case, record, start, *long_lived, forged):
            assert not task_failures(await handle.fetch_history()), handle.id


async def _worked(handle) -> bool:
    history = await handle.fetch_history()
    return any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events)
