"""`redress`: the command line for agents, supervisors and admins.

Exit codes: 0 done, 1 refused / not found / already exists, 2 invalid input or rules.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from activities.rules import RuleSet, RulesInvalid, load_rules
from client import InvalidComplaint, RedressClient, RedressError, connect
from workflows import signatures
from workflows.contract import (
    CustomerQuestion,
    CustomerReply,
    Feedback,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Retriage,
    SeverityChange,
    Status,
    TimelineEvent,
    Withdrawal,
    describe_validation_error,
)


def _print_json(value: Any) -> None:
    def plain(item: Any) -> Any:
        if isinstance(item, BaseModel):
            return item.model_dump(mode="json")
        if isinstance(item, list):
            return [plain(i) for i in item]
        return item

    print(json.dumps(plain(value), ensure_ascii=False, indent=2))


def _show_status(status: Status, timeline: list[TimelineEvent]) -> None:
    print(f"complaint  {status.complaint_id}")
    print(f"stage      {status.stage.value}")
    if status.severity:
        print(f"triage     {status.category} / {status.severity.value} / queue {status.queue}  (rules {status.rule_version})")
    if status.assignee:
        print(f"assignee   {status.assignee}")
    for name, deadline in status.deadlines.items():
        state = ("met " + deadline.met_at.isoformat(timespec="seconds")) if deadline.met_at else (
            "MISSED" if deadline.breached_at else "open")
        print(f"due        {name}: {deadline.due.isoformat(timespec='seconds')}  [{state}]")
    if status.escalation_level:
        print(f"escalation level {status.escalation_level}")
    if status.pending_approval:
        p = status.pending_approval
        print(f"awaiting   {p.proposal_id}: {p.kind.value} {p.amount} {p.currency} needs {p.required_role}"
              f" (eligible: {', '.join(p.eligible_approvers)})")
    for offer in status.offers:
        amount = f" {offer.amount} {offer.currency}" if offer.amount else ""
        print(f"offer      {offer.kind.value}{amount}  ({offer.rule})")
    if status.csat is not None:
        print(f"csat       {status.csat}")
    print("timeline")
    for event in timeline:
        print(f"  {event.at.isoformat(timespec='seconds')}  {event.kind:<16} {event.actor:<22} {event.detail}")


async def _with_client(args: argparse.Namespace, action) -> int:
    redress = RedressClient(await connect(args.address))
    try:
        result = await action(redress)
    except InvalidComplaint as invalid:
        print(invalid, file=sys.stderr)
        return 2
    except RedressError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    if result is not None:
        _print_json(result) if args.json else print(result if isinstance(result, str) else _summary(result))
    return 0


def _summary(result: Any) -> str:
    if isinstance(result, Status):
        return f"{result.complaint_id}: {result.stage.value}"
    if isinstance(result, BaseModel):
        return " ".join(f"{k}={v}" for k, v in result.model_dump(mode="json", exclude_none=True).items()
                        if not isinstance(v, (list, dict)))
    return str(result)


def _message(model: type[BaseModel], **fields: Any) -> BaseModel:
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as invalid:
        raise InvalidComplaint(describe_validation_error(invalid, root="message")) from None


def cmd_submit(args: argparse.Namespace) -> int:
    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2

    async def action(redress: RedressClient) -> str:
        workflow_id = await redress.submit(data)
        return f"submitted {data.get('complaint_id')} as workflow {workflow_id}"

    return asyncio.run(_with_client(args, action))


def cmd_show(args: argparse.Namespace) -> int:
    async def action(redress: RedressClient) -> None:
        status, timeline = await redress.status(args.id), await redress.timeline(args.id)
        if args.json:
            _print_json({"status": status.model_dump(mode="json"),
                         "timeline": [e.model_dump(mode="json") for e in timeline]})
        else:
            _show_status(status, timeline)

    return asyncio.run(_with_client(args, action))


def cmd_pending(args: argparse.Namespace) -> int:
    async def action(redress: RedressClient) -> None:
        cases = await redress.pending()
        if args.json:
            _print_json(cases)
            return
        if not cases:
            print("no case awaits approval")
            return
        now = datetime.now(timezone.utc)
        print(f"{'complaint':<24} {'proposal':<9} {'remedy':<12} {'amount':>12} {'needs':<12} {'age':>8}  proposed by")
        for status in cases:
            p = status.pending_approval
            age = _age(now - p.proposed_at) if p.proposed_at else "?"
            print(f"{status.complaint_id:<24} {p.proposal_id:<9} {p.kind.value:<12} "
                  f"{f'{p.amount} {p.currency}':>12} {p.required_role or '':<12} {age:>8}  {p.proposed_by}")

    return asyncio.run(_with_client(args, action))


def _age(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 1440}d{minutes % 1440 // 60}h" if minutes >= 1440 else f"{minutes // 60}h{minutes % 60:02d}m"


def _update_command(method: str, model: type[BaseModel], fields) -> Any:
    def command(args: argparse.Namespace) -> int:
        async def action(redress: RedressClient) -> Any:
            message = _message(model, **fields(args))
            return await getattr(redress, method)(args.id, message)

        return asyncio.run(_with_client(args, action))

    return command


def _keys_dir(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("REDRESS_KEYS", "keys"))


def cmd_keys_new(args: argparse.Namespace) -> int:
    directory = _keys_dir(args.dir)
    path = directory / f"{args.name}.pem"
    if path.exists():
        print(f"{path} exists; not overwriting a key", file=sys.stderr)
        return 1
    directory.mkdir(parents=True, exist_ok=True)
    pem, public_key = signatures.new_key_pair()
    path.touch(mode=0o600)
    path.write_bytes(pem)
    print(f"# private key written to {path} (keep it secret). Add to rules/approval.yaml under approvers:")
    print(f"  {args.name}: {{role: {args.role}, public_key: {public_key}}}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    key_path = Path(args.key) if args.key else _keys_dir(None) / f"{args.approver}.pem"
    try:
        private_key = signatures.load_private_key(key_path.read_bytes())
    except (OSError, ValueError) as error:
        print(f"{key_path}: {error}", file=sys.stderr)
        return 2

    async def action(redress: RedressClient) -> Any:
        decide = redress.approve if args.verb == "approve" else redress.reject
        return await decide(args.id, args.approver, private_key, note=args.note, proposal_id=args.proposal)

    return asyncio.run(_with_client(args, action))


def _load_or_report(directory: str) -> RuleSet | None:
    """The rule set, or None after printing every problem (file:line:column) to stderr."""
    try:
        return load_rules(directory)
    except RulesInvalid as invalid:
        for error in invalid.errors:
            print(error, file=sys.stderr)
        print(f"{len(invalid.errors)} problem(s); rules refused", file=sys.stderr)
        return None


def cmd_rules_check(args: argparse.Namespace) -> int:
    rule_set = _load_or_report(args.dir)
    if rule_set is None:
        return 2
    doc = rule_set.document
    for warning in rule_set.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"rules OK: version {rule_set.version}: {len(doc.rules)} triage rules, {len(doc.offers)} offers, "
          f"{len(doc.approval.roles)} approval roles, {len(doc.approvers)} approvers, {len(doc.templates)} templates")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from activities.rules.admin_tests import run_admin_tests

    rule_set = _load_or_report(args.dir)
    if rule_set is None:
        return 2
    outcomes = run_admin_tests(rule_set)
    failed = [o for o in outcomes if not o.passed]
    for outcome in outcomes:
        print(f"{'ok  ' if outcome.passed else 'FAIL'} {Path(outcome.file).name}: {outcome.name}")
        for difference in outcome.differences:
            print(f"       {difference}")
    print(f"rules test: {len(outcomes) - len(failed)} passed, {len(failed)} failed (rules {rule_set.version})")
    return 1 if failed or not outcomes else 0


def cmd_rules_explain(args: argparse.Namespace) -> int:
    from activities.io import ProposalCheck, TriageFacts
    from activities.rules.admin_tests import EXAMPLE_DEFAULTS
    from activities.rules.engine import check_proposal, triage
    from client import validate_complaint

    rule_set = _load_or_report(args.rules)
    if rule_set is None:
        return 2
    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        complaint = validate_complaint({**EXAMPLE_DEFAULTS, **data})
    except (OSError, ValueError, InvalidComplaint) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2
    result = triage(rule_set, TriageFacts.of(complaint))
    if args.json:
        _print_json(result)
        return 0
    print(f"rules {result.rule_version}: {result.category} / {result.severity.value} / queue {result.queue}")
    for name, due in result.deadlines.items():
        print(f"  {name} due {due.isoformat(timespec='minutes')}")
    for offer in result.offers:
        amount = f" {offer.amount} {offer.currency}" if offer.amount else ""
        check = ProposalCheck(complaint_id=complaint.complaint_id, rule_version=rule_set.version, kind=offer.kind,
                              amount=offer.amount, currency=offer.currency or "CNY", proposed_by="(an agent)")
        verdict = check_proposal(rule_set, check)
        approval = f"needs {verdict.required_role} or above" if verdict.needs_approval else "no approval needed"
        print(f"  offer {offer.kind.value}{amount} ({offer.rule}): {approval}")
    print("rules:")
    for firing in result.rules:
        print(f"  {'FIRED' if firing.fired else '  -  '}  {firing.rule}: {firing.reason}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from workflows.schemas import contract_schemas

    text = json.dumps(contract_schemas(), ensure_ascii=False, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        print(text)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import worker

    worker.main()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redress", description="Durable complaint handling on Temporal.")
    parser.add_argument("--address", help="Temporal frontend (default: TEMPORAL_ADDRESS or localhost:7233)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("worker", help="run the worker (embedded Temporal server unless TEMPORAL_ADDRESS is set)"
                        ).set_defaults(run=cmd_worker)
    submit = commands.add_parser("submit", help="open a case from a complaint JSON file")
    submit.add_argument("file")
    submit.set_defaults(run=cmd_submit)
    commands.add_parser("pending", help="cases awaiting approval: amount, age, required role").set_defaults(
        run=cmd_pending)
    show = commands.add_parser("show", help="status and timeline of a case")
    show.add_argument("id", help="complaint id")
    show.set_defaults(run=cmd_show)

    def message_command(name: str, help_: str, method: str, model: type[BaseModel], options, fields) -> None:
        sub = commands.add_parser(name, help=help_)
        sub.add_argument("id", help="complaint id")
        for flag, kwargs in options:
            sub.add_argument(flag, **kwargs)
        sub.set_defaults(run=_update_command(method, model, fields))

    message_command("respond", "record a response to the customer", "record_response", ResponseRecord,
                    [("--as", {"dest": "agent", "required": True}), ("--message", {})],
                    lambda a: {"agent": a.agent, "message": a.message})
    message_command("propose", "propose a remedy", "propose_remedy", RemedyProposal,
                    [("--as", {"dest": "agent", "required": True}), ("--kind", {"required": True}),
                     ("--amount", {"type": Decimal, "default": Decimal("0")}), ("--currency", {"default": "CNY"}),
                     ("--reason", {"required": True})],
                    lambda a: {"proposed_by": a.agent, "kind": a.kind, "amount": a.amount,
                               "currency": a.currency, "reason": a.reason})
    for verb in ("approve", "reject"):
        decide = commands.add_parser(verb, help=f"{verb} the remedy awaiting approval, signed with your key")
        decide.add_argument("id", help="complaint id")
        decide.add_argument("--as", dest="approver", required=True)
        decide.add_argument("--key", help="your private key file (default: $REDRESS_KEYS/NAME.pem, keys/ if unset)")
        decide.add_argument("--proposal", help="the proposal you mean to decide (refused if another is pending)")
        decide.add_argument("--note", "--reason", dest="note", help="why (recorded in the timeline)")
        decide.set_defaults(run=cmd_decide, verb=verb)
    keys = commands.add_parser("keys", help="approvers' signing keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new_key = keys_commands.add_parser("new", help="create a key pair; prints the approver directory entry")
    new_key.add_argument("name")
    new_key.add_argument("--role", default="team_lead")
    new_key.add_argument("--dir", help="where to write NAME.pem (default: $REDRESS_KEYS or keys/)")
    new_key.set_defaults(run=cmd_keys_new)
    message_command("resolve", "mark the case resolved", "resolve", Resolution,
                    [("--as", {"dest": "agent", "required": True}), ("--summary", {"required": True})],
                    lambda a: {"agent": a.agent, "summary": a.summary})
    message_command("feedback", "record the customer's CSAT (1-5)", "customer_feedback", Feedback,
                    [("--score", {"type": int, "required": True}), ("--comment", {})],
                    lambda a: {"score": a.score, "comment": a.comment})
    message_command("ask", "ask the customer something; deadline clocks pause until they reply", "await_customer",
                    CustomerQuestion, [("--as", {"dest": "agent", "required": True}), ("--question", {"required": True})],
                    lambda a: {"agent": a.agent, "question": a.question})
    message_command("reply", "record the customer's reply; the clocks run again", "customer_replied",
                    CustomerReply, [("--message", {"required": True})], lambda a: {"message": a.message})
    message_command("retriage", "decide the case again with the current rules (deadlines follow)", "retriage",
                    Retriage, [("--as", {"dest": "by", "required": True}), ("--reason", {"required": True})],
                    lambda a: {"by": a.by, "reason": a.reason})
    message_command("severity", "re-tier the case (its open deadlines are recomputed)", "change_severity",
                    SeverityChange,
                    [("--to", {"dest": "severity", "required": True, "choices": ["general", "urgent", "major"]}),
                     ("--as", {"dest": "by", "required": True}), ("--reason", {"required": True})],
                    lambda a: {"severity": a.severity, "by": a.by, "reason": a.reason})
    message_command("withdraw", "withdraw the complaint", "withdraw", Withdrawal,
                    [("--by", {"required": True}), ("--reason", {})],
                    lambda a: {"by": a.by, "reason": a.reason})

    schema = commands.add_parser("schema", help="JSON Schema of the workflow input, every message and query result")
    schema.add_argument("--out", help="write to this file instead of standard output")
    schema.set_defaults(run=cmd_schema)
    rules = commands.add_parser("rules", help="work with the rule files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_commands.add_parser("check", help="validate a rules folder; exit 2 on any problem")
    check.add_argument("dir", nargs="?", default="rules")
    check.set_defaults(run=cmd_rules_check)
    test = rules_commands.add_parser("test", help="run the admins' rule tests in DIR/tests/*.yaml")
    test.add_argument("dir", nargs="?", default="rules")
    test.set_defaults(run=cmd_rules_test)
    explain = rules_commands.add_parser("explain", help="dry-run triage of a complaint: outcome and every rule's why")
    explain.add_argument("file", help="complaint JSON (contact details may be left out)")
    explain.add_argument("--rules", default="rules")
    explain.set_defaults(run=cmd_rules_explain)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args)
    except BrokenPipeError:  # `redress show X | head`: the reader left; not an error
        code = 0
    _exit_now(code)


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown, once all output is flushed.

    The Temporal client's Rust threads can outlive the event loop; during
    CPython finalization they abort the process about one run in fifteen
    (temporalio/sdk-python#300, seen here as SIGABRT after the work was done).
    Skipping finalization avoids it; nothing of ours needs it.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
