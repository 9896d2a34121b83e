"""Bad input is refused clearly and loses nothing; a running workflow never fails because of it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.rules import RulesInvalid, load_rules
from redress.client import InvalidComplaint, Refused
from redress.contract import Feedback, RemedyProposal, Resolution, ResponseRecord
from tests.helpers.cases import complaint, open_case
from tests.helpers.processes import ROOT


async def test_invalid_complaints_are_refused_at_the_client_naming_the_field(run_worker, env):
    async with run_worker() as redress:
        cases = {
            "complaint.channel": complaint(channel="fax"),
            "complaint.text": {k: v for k, v in complaint().items() if k != "text"},
            "complaint.customer.email": complaint(customer={"id": "c1", "email": "not-an-address"}),
            "complaint.order.currency": complaint(order={"id": "o1", "value": "10", "currency": "yuan"}),
            "complaint.received_at": complaint(received_at="2026-11-22T09:00:00"),
            "complaint.chanel": {**complaint(), "chanel": "web"},
            "complaint.requested_remedy": complaint(requested_remedy="free_car"),
        }
        for field, data in cases.items():
            with pytest.raises(InvalidComplaint) as refused:
                await redress.submit(data)
            assert any(p.startswith(f"{field}:") for p in refused.value.problems), (field, refused.value.problems)
            with pytest.raises(RPCError) as missing:
                await redress.handle(data["complaint_id"]).describe()  # nothing was started
            assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_raw_json_that_bypasses_the_client_ends_as_refused_not_failed(run_worker, env):
    """A non-Python service may send anything: the case says why it refused it, and completes."""
    async with run_worker() as redress:
        bad = complaint(channel="carrier_pigeon")
        handle = await env.client.start_workflow(
            "Complaint", bad, id=f"complaint-{bad['complaint_id']}", task_queue=redress.task_queue
        )
        outcome = await redress.outcome(bad["complaint_id"])
        assert outcome.stage.value == "refused"
        assert any(p.startswith("complaint.channel:") for p in outcome.problems)
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED


async def test_invalid_messages_are_refused_with_a_reason_and_change_nothing(run_worker):
    async with run_worker() as redress:
        cid = await open_case(redress)
        with pytest.raises(Refused, match="record a response"):
            await redress.resolve(cid, Resolution(agent="li.na", summary="done", root_cause="process_gap"))
        with pytest.raises(Refused, match="feedback is taken after"):
            await redress.customer_feedback(cid, Feedback(score=1))
        with pytest.raises(Refused, match="amount"):
            await redress.propose_remedy(cid, RemedyProposal(kind="refund", reason="x", proposed_by="li.na"))
        status = await redress.status(cid)
        assert status.stage.value == "acknowledged" and status.remedies == [] and status.csat is None
        await redress.record_response(cid, ResponseRecord(agent="li.na"))
        assert (await redress.status(cid)).stage.value == "in_progress"


def broken_copy(tmp_path: Path, file: str, old: str, new: str) -> Path:
    import shutil

    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target)
    text = (target / file).read_text(encoding="utf-8")
    assert old in text
    (target / file).write_text(text.replace(old, new, 1), encoding="utf-8")
    return target


def position_of(path: Path, needle: str) -> tuple[int, int]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def test_bad_duration_is_reported_at_its_file_line_and_column(tmp_path):
    rules = broken_copy(tmp_path, "tiers.yaml", "resolution: 48h", "resolution: 48 hours")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    line, column = position_of(rules / "tiers.yaml", "48 hours")
    assert str(refused.value.errors[0]).startswith(f"{rules / 'tiers.yaml'}:{line}:{column}: tiers.urgent.resolution:")


def test_unknown_cel_variable_is_a_load_error_pointing_into_the_expression(tmp_path):
    rules = broken_copy(tmp_path, "routing.yaml", "order.present && order.value", "order.present && ordr.value")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    line, column = position_of(rules / "routing.yaml", "ordr.value")
    [error] = refused.value.errors
    assert (error.line, error.column) == (line, column)
    assert "unknown variable ordr" in error.message


def test_cel_syntax_error_and_yaml_syntax_error_are_located(tmp_path):
    rules = broken_copy(tmp_path, "routing.yaml", 'when: channel == "referral"', 'when: channel == = "referral"')
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    line, _ = position_of(rules / "routing.yaml", "channel == =")
    assert refused.value.errors[0].line == line and "CEL syntax" in refused.value.errors[0].message

    rules2 = broken_copy(tmp_path / "2", "approval.yaml", "  li.na: {role: specialist}", "  li.na: {role: specialist")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules2)
    assert "YAML syntax" in refused.value.errors[0].message and refused.value.errors[0].file.endswith("approval.yaml")


def test_unknown_role_and_section_defined_twice_are_reported(tmp_path):
    rules = broken_copy(tmp_path, "approval.yaml", "zhang.wei: {role: cs_manager}", "zhang.wei: {role: cs_mgr}")
    (rules / "extra.yaml").write_text("follow_up:\n  survey_window: 1d\n", encoding="utf-8")
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    [duplicate] = refused.value.errors
    line, _ = position_of(rules / "tiers.yaml", "follow_up:")
    assert str(duplicate).startswith(f"{rules / 'tiers.yaml'}:{line}:1: follow_up: section already defined in")
    assert "extra.yaml:1" in str(duplicate)

    (rules / "extra.yaml").unlink()
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules)
    [unknown] = refused.value.errors
    line, column = position_of(rules / "approval.yaml", "cs_mgr")
    assert str(unknown) == f"{rules / 'approval.yaml'}:{line}:{column}: approvers.zhang.wei.role: unknown role 'cs_mgr'"


def test_rules_check_command_exits_nonzero_with_positions(tmp_path):
    rules = broken_copy(
        tmp_path,
        "routing.yaml",
        "set: {category: billing, queue: billing}",
        "set: {category: billing, queue: billing, severity: critical}",
    )
    run = subprocess.run(
        [sys.executable, "-m", "redress", "rules", "check", str(rules)], capture_output=True, text=True, cwd=ROOT
    )
    assert run.returncode == 2
    line, column = position_of(rules / "routing.yaml", "critical")
    assert f"routing.yaml:{line}:{column}: rules.14.set.severity:" in run.stderr  # the billing-error rule
    ok = subprocess.run(
        [sys.executable, "-m", "redress", "rules", "check", str(ROOT / "rules")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ok.returncode == 0 and "rules OK" in ok.stdout


UPDATES = [
    "record_response",
    "propose_remedy",
    "approve_remedy",
    "reject_remedy",
    "resolve",
    "customer_feedback",
    "await_customer",
    "customer_replied",
    "retriage",
    "change_severity",
    "withdraw",
]


async def test_a_message_sent_as_json_null_is_refused_and_the_case_goes_on(run_worker):
    """Found by the fuzz: `await_customer` with null passed its validator and failed the workflow task."""
    from temporalio.client import WorkflowUpdateFailedError

    async with run_worker() as redress:
        cid = await open_case(redress, respond_as="li.na")  # in progress: the stage where await_customer is allowed
        case = redress.handle(cid)
        for name in UPDATES:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await case.execute_update(name, None)
            cause = refused.value.cause
            assert isinstance(cause, ApplicationError) and "the message is empty" in cause.message, name
        assert (await redress.status(cid)).stage.value == "in_progress"
        history = await case.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
