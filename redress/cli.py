"""`redress`: the command line for agents, supervisors and admins.

Exit codes: 0 done, 1 refused / not found / already exists, 2 invalid input or rules.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from temporalio.service import RPCError

from redress import codec, signatures, state, trends
from redress.client import (
    InsecureConnection,
    InvalidComplaint,
    InvalidInput,
    InvalidMessage,
    RedressClient,
    RedressError,
    connect,
)
from redress.contract import (
    TASK_QUEUE,
    ContactCorrection,
    CustomerQuestion,
    CustomerReply,
    DataExported,
    Evidence,
    EvidenceKind,
    EvidenceRecord,
    Feedback,
    ProposalStatus,
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
from redress.customers import CustomerState, FlagClearance, FlagRequest, paid_per_currency
from redress.logs import configure_logging
from redress.terminal import print_fields, print_table

if TYPE_CHECKING:
    from activities.rules import RuleSet

M = TypeVar("M", bound=BaseModel)
# The engine beside this package, imported by the commands that run it (docs: README, "Packaging").
ENGINE = ("worker", "workflows", "activities")


def _print_json(value: Any) -> None:
    def plain(item: Any) -> Any:
        if isinstance(item, BaseModel):
            return item.model_dump(mode="json")
        if isinstance(item, list):
            return [plain(i) for i in item]
        return item

    print(json.dumps(plain(value), ensure_ascii=False, indent=2))


def _when(moment: datetime | None) -> str:
    return moment.astimezone().isoformat(timespec="seconds") if moment else "-"


def _show_status(status: Status, timeline: list[TimelineEvent], evidence: list[EvidenceRecord]) -> None:
    fields: list[tuple[str, Any]] = [("complaint", status.complaint_id), ("stage", status.stage.value)]
    if status.severity:
        fields += [
            ("severity", status.severity.value),
            ("category", status.category),
            ("queue", status.queue),
            ("rules", status.rule_version),
        ]
    if status.assignee:
        fields.append(("assignee", status.assignee))
    if status.escalation_level:
        fields.append(("escalation", f"level {status.escalation_level}"))
    if status.pending_approval:
        p = status.pending_approval
        fields.append(
            (
                "awaiting",
                f"{p.proposal_id}: {p.kind.value} {p.amount} {p.currency} needs {p.needs()}"
                f" (eligible: {', '.join(p.eligible_approvers)})",
            )
        )
    for held in (p for p in status.remedies if p.status == ProposalStatus.awaiting_evidence):
        fields.append(
            (
                "held",
                f"{held.proposal_id}: {held.kind.value} {held.amount} {held.currency} waits for "
                f"{' or '.join(k.value for k in held.evidence_needed)} (`redress evidence`)",
            )
        )
    for offer in status.offers:
        amount = f" {offer.amount} {offer.currency}" if offer.amount else ""
        fields.append(("offer", f"{offer.kind.value}{amount}  ({offer.rule})"))
    if status.apology_by:
        fields.append(("apology from", status.apology_by))
    if status.root_cause:
        fields.append(("root cause", status.root_cause))
    elif status.root_causes and not status.stage.is_final:
        fields.append(("root causes", ", ".join(status.root_causes)))  # what `resolve --root-cause` may name
    if status.csat is not None:
        fields.append(("csat", status.csat))
    print_fields(fields)
    if status.deadlines:
        rows = [
            (
                name,
                _when(d.due),
                "met" if d.met_at else ("BREACHED" if d.breached_at else "open"),
                _when(d.met_at or d.breached_at),
            )
            for name, d in status.deadlines.items()
        ]
        print_table(["deadline", "due", "state", "since"], rows, title="deadlines")
    if evidence:
        print_table(
            ["id", "kind", "by", "sha256", "ref"],
            [(e.evidence_id, e.kind.value, e.by, e.sha256[:16], e.ref) for e in evidence],
            title="evidence",
        )
    print_table(
        ["at", "event", "by", "detail"], [(_when(e.at), e.kind, e.actor, e.detail) for e in timeline], title="timeline"
    )


async def _with_client(args: argparse.Namespace, action) -> int:
    redress = RedressClient(await connect(args.address), task_queue=args.task_queue)
    try:
        result = await action(redress)
    except InvalidInput as invalid:
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
    fields = result.model_dump(mode="json", exclude_none=True) if isinstance(result, BaseModel) else result
    if isinstance(fields, dict):
        return " ".join(f"{k}={v}" for k, v in fields.items() if v is not None and not isinstance(v, (list, dict)))
    return str(result)


def _message(model: type[M], **fields: Any) -> M:
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as invalid:
        raise InvalidMessage(describe_validation_error(invalid, root="message")) from None


def cmd_submit(args: argparse.Namespace) -> int:
    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2

    # a file written by hand (the README's demo) says what happened, not when: it was received now. Services
    # submitting through the client must say when they received it (the contract requires received_at).
    received_now = isinstance(data, dict) and "received_at" not in data
    if received_now:
        data["received_at"] = datetime.now().astimezone().isoformat(timespec="seconds")

    async def action(redress: RedressClient) -> str | dict[str, str]:
        workflow_id = await redress.submit(data)
        if args.json:
            return {"complaint_id": data.get("complaint_id"), "workflow_id": workflow_id}
        when = f", received now ({data['received_at']})" if received_now else ""
        return f"submitted {data.get('complaint_id')} as workflow {workflow_id}{when}"

    return asyncio.run(_with_client(args, action))


def cmd_show(args: argparse.Namespace) -> int:
    async def action(redress: RedressClient) -> None:
        status, timeline = await redress.status(args.id), await redress.timeline(args.id)
        evidence = await redress.evidence(args.id) if status.evidence else []
        if args.json:
            _print_json(
                {
                    "status": status.model_dump(mode="json"),
                    "timeline": [e.model_dump(mode="json") for e in timeline],
                    "evidence": [e.model_dump(mode="json") for e in evidence],
                }
            )
        else:
            _show_status(status, timeline, evidence)

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
        now = datetime.now(UTC)
        rows = []
        for status in cases:
            p = status.pending_approval
            assert p is not None  # awaiting_approval() lists only those
            rows.append(
                (
                    status.complaint_id,
                    p.proposal_id,
                    p.kind.value,
                    f"{p.amount} {p.currency}",
                    p.needs(),
                    _age(now - p.proposed_at) if p.proposed_at else "?",
                    p.proposed_by,
                )
            )
        print_table(
            ["complaint", "proposal", "remedy", "amount", "needs", "age", "proposed by"], rows, right=["amount", "age"]
        )

    return asyncio.run(_with_client(args, action))


def cmd_list(args: argparse.Namespace) -> int:
    try:
        due_within = parse_span(args.due_within) if args.due_within else None
    except ValueError as error:
        print(f"--due-within: {error}", file=sys.stderr)
        return 2

    async def action(redress: RedressClient) -> None:
        cases = await redress.list_cases(
            stage=args.status,
            severity=args.severity,
            queue=args.queue,
            category=args.category,
            breached=True if args.breached else None,
            due_within=due_within,
            include_ended=args.all,
            limit=args.limit,
        )
        if args.json:
            _print_json(cases)
            return
        now = datetime.now(UTC)
        rows = [
            (
                c.complaint_id,
                c.stage,
                c.severity,
                c.category,
                c.queue,
                c.channel,
                f"{c.next_due_name} in {_age(c.next_due - now)}"
                if c.next_due and c.next_due > now
                else (f"{c.next_due_name} overdue" if c.next_due else "-"),
                c.escalation_level or "",
                "yes" if c.breached else "",
            )
            for c in cases
        ]
        print_table(
            ["complaint", "stage", "severity", "category", "queue", "channel", "next deadline", "esc.", "breached"],
            rows,
            right=["esc."],
        )
        print(f"{len(cases)} case(s)", file=sys.stderr)

    return asyncio.run(_with_client(args, action))


def parse_span(text: str) -> timedelta:
    """`30m`, `4h`, `2d`, `1w`."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if len(text) > 1 and text[-1] in units and text[:-1].isdigit():
        return timedelta(**{units[text[-1]]: int(text[:-1])})
    raise ValueError(f"{text!r}: give a span like 30m, 4h, 2d or 1w")


def cmd_report(args: argparse.Namespace) -> int:
    from redress import report

    fmt = "json" if args.json else args.format
    try:
        since = report.parse_since(args.since) if args.since else None
        until = report.parse_since(args.until) if args.until else None
    except ValueError as error:
        print(f"report: {error}", file=sys.stderr)
        return 2

    watched: list[trends.TrendReport | None] = [None]  # the last trend watch: read from the live cluster only

    async def gather() -> list[report.CaseRecord]:
        client = await connect(args.address)
        if not args.export:
            try:
                watched[0] = await trends.last_report(client, args.task_queue)
            except RPCError as error:  # the case figures do not depend on it
                print(f"report: the trend watch's last run could not be read ({error.message})", file=sys.stderr)
        return await report.collect(client, since, until, task_queue=args.task_queue)

    try:
        records = report.read_exports(Path(p) for p in args.input) if args.input else asyncio.run(gather())
    except (OSError, ValueError) as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    if args.input and (since or until):
        records = [r for r in records if (not since or r.started_at >= since) and (not until or r.started_at < until)]
    if args.export:
        count = report.write_export(records, Path(args.export))
        print(f"exported {count} case record(s) to {args.export}", file=sys.stderr)
        return 0
    summary = report.summarize(records, period=args.by, since=since, until=until, trends=watched[0])
    if fmt == "table":
        report.render_terminal(summary)
        return 0
    text = {"json": report.render_json, "csv": report.render_csv, "html": report.render_html}[fmt](summary)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out} ({summary['overall']['cases']} cases)", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_trends(args: argparse.Namespace) -> int:
    """redress trends [--run]: the trend watch's last run (every series, its usual band, forecast and warning)."""
    from redress import report

    async def action(redress: RedressClient) -> None:
        if args.run_now:
            found: trends.TrendReport | None = await trends.run_now(redress.client, args.task_queue)
        else:
            found = await trends.last_report(redress.client, args.task_queue)
        if found is None:
            print("the trend watch has not run yet (its schedule starts with the worker; --run runs it now)")
        elif args.json:
            _print_json(found)
        else:
            report.render_trends(found.model_dump(mode="json"))

    try:
        return asyncio.run(_with_client(args, action))
    except RPCError as error:  # no schedule on this queue: the worker was never started with `trends:` rules
        print(f"trends: {error.message}", file=sys.stderr)
        return 1


def _age(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return f"{minutes // 1440}d{minutes % 1440 // 60}h" if minutes >= 1440 else f"{minutes // 60}h{minutes % 60:02d}m"


def _evidence_fields(args: argparse.Namespace) -> dict[str, Any]:
    """add_evidence's message; with --file, the digest of the local copy (only the digest is sent)."""
    sha256, ref = args.sha256, args.ref
    if args.file:
        if not Path(args.file).is_file():  # a FIFO would block for ever, /dev/null would digest nothing
            raise InvalidMessage(["--file: not a regular file"])
        try:
            with open(args.file, "rb") as file:
                sha256 = hashlib.file_digest(file, "sha256").hexdigest()
        except OSError as error:
            raise InvalidMessage([f"--file: {error.strerror or error}"]) from None
        ref = ref or Path(args.file).resolve().as_uri()
    return {"kind": args.kind, "ref": ref, "sha256": sha256, "note": args.note, "by": args.by}


def _update_command(method: str, model: type[BaseModel], fields) -> Any:
    def command(args: argparse.Namespace) -> int:
        async def action(redress: RedressClient) -> Any:
            message = _message(model, **fields(args))
            return await getattr(redress, method)(args.id, message)

        return asyncio.run(_with_client(args, action))

    return command


def cmd_crisis(args: argparse.Namespace) -> int:
    """redress crisis show|propose|approve KEY: one common remedy for every case linked to a crisis."""

    async def action(redress: RedressClient) -> Any:
        if args.crisis_command == "show":
            watch = await redress.crisis(args.key)
            if args.json:
                return watch
            print_fields(
                [
                    ("crisis", watch["key"]),
                    ("declared", watch["declared_at"] or "no"),
                    ("in window", f"{watch['recent']} of {watch['threshold']}"),
                    ("linked", ", ".join(watch["linked"]) or "-"),
                ]
            )
            if watch["proposals"]:
                print_table(
                    ["proposal", "remedy", "amount", "status", "approved by", "applied to"],
                    [
                        (
                            p["proposal_id"],
                            p["kind"],
                            f"{p['amount']} {p['currency']}",
                            p["status"],
                            p["decided_by"] or "",
                            len(p["applied_to"]),
                        )
                        for p in watch["proposals"]
                    ],
                    right=["amount", "applied to"],
                )
            return None
        if args.crisis_command == "propose":
            return await redress.propose_common_remedy(
                args.key,
                _message(
                    RemedyProposal,
                    kind=args.kind,
                    amount=args.amount,
                    currency=args.currency,
                    reason=args.reason,
                    proposed_by=args.agent,
                ),
                _signing_key(args.agent, args.key_file, args.unsigned),
            )
        private_key = _private_key(Path(args.key_file) if args.key_file else _keys_dir(None) / f"{args.approver}.pem")
        return await redress.approve_common_remedy(args.key, args.approver, private_key, note=args.note)

    try:
        return asyncio.run(_with_client(args, action))
    except (OSError, ValueError) as error:
        print(error, file=sys.stderr)
        return 2


def _show_customer(record: CustomerState) -> None:
    paid = paid_per_currency(record.payouts)
    flag = record.flag
    print_fields(
        [
            ("customer", record.customer_id),
            ("cases", f"{len(record.cases)} ({sum(1 for c in record.cases if c.open)} open)"),
            (
                "payouts",
                f"{len(record.payouts)}" + (": " + ", ".join(f"{v} {k}" for k, v in paid.items()) if paid else ""),
            ),
            ("flagged", f"{flag.reason} (by {flag.by}, {_when(flag.at)})" if flag else "no"),
            ("cleared until", _when(record.flag_cleared_until)),
            ("churn watches", len(record.watches)),
        ]
    )
    if record.flag_log:
        print_table(
            ["at", "action", "by", "reason"],
            [(_when(e.at), e.action, e.by, e.reason or "") for e in record.flag_log],
            title="flag",
        )


def cmd_customer(args: argparse.Namespace) -> int:
    async def action(redress: RedressClient) -> Any:
        if args.purchased:
            await redress.customer_purchased(args.id, order_id=args.order)
            return f"purchase recorded for {args.id}"
        if args.clear_flag or args.flag:
            if not args.by:
                raise InvalidMessage(["--as: name yourself (the supervisor who reviewed the flag)"])
            if args.clear_flag:
                clearance = _message(FlagClearance, by=args.by, note=args.note)
                await redress.clear_customer_flag(args.id, clearance)
                return f"flag cleared for {args.id}"
            await redress.flag_customer(args.id, _message(FlagRequest, reason=args.flag, by=args.by))
            return f"{args.id} flagged for review"
        record = await redress.customer_record(args.id)
        if args.json:
            return record
        _show_customer(record)
        return None

    return asyncio.run(_with_client(args, action))


def _private_key(path: Path):
    try:
        return signatures.load_private_key(path.read_bytes())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def _keys_dir(explicit: str | None) -> Path:
    return Path(explicit or os.environ.get("REDRESS_KEYS", "keys"))


def cmd_keys_new(args: argparse.Namespace) -> int:
    """A signing key for a person; with --register, also their entry in the rules (that needs the engine)."""
    name = args.name
    problem = signatures.person_name_problem(name)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    keys = _keys_dir(args.dir)
    path = keys / f"{name}.pem"
    if path.exists():
        print(f"{path} exists; not overwriting a key (revoke it first: redress keys revoke {name})", file=sys.stderr)
        return 1
    keys.mkdir(parents=True, exist_ok=True)
    pem, public_key = signatures.new_key_pair()
    codec.write_private(path, pem.decode())
    registered = None
    if args.register:
        from activities.rules import directory as approver_directory

        try:
            registered = approver_directory.register(Path(args.rules), name, public_key, args.role)
        except approver_directory.DirectoryEditRefused as refused:
            path.unlink()
            print(f"not registered, and no key kept: {refused}", file=sys.stderr)
            return 2
    role = args.role or "specialist"  # least authority unless told
    if args.json:
        _print_json(
            {
                "name": name,
                "role": args.role,
                "private_key_file": str(path),
                "public_key": public_key,
                "registered_in": str(registered) if registered else None,
            }
        )
        return 0
    if registered:
        print(
            f"# private key written to {path} (keep it secret); public key registered in {registered}: "
            f"{name} can sign from the next decision on, no restart needed"
        )
        return 0
    print(
        f"# private key written to {path} (keep it secret). Add to rules/approval.yaml under approvers "
        f"(or run again with --register):"
    )
    print(f"  {name}: {{role: {role}, public_key: {public_key}}}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from activities.rules import directory as approver_directory

    try:
        if args.passkey:
            edited = approver_directory.revoke_passkey(Path(args.rules), args.name, args.passkey)
        else:
            edited = approver_directory.revoke(Path(args.rules), args.name)
    except approver_directory.DirectoryEditRefused as refused:
        print(f"not revoked: {refused}", file=sys.stderr)
        return 1
    what = f"passkey {args.passkey}" if args.passkey else "key and every passkey"
    if args.json:
        _print_json({"name": args.name, "revoked": what, "revoked_in": str(edited)})
    else:
        print(
            f"{args.name}'s {what} revoked in {edited}: nothing of it decides from now on, pending proposals included"
        )
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """A new deployment key: current at once locally; with a shared state, staged until `keys activate`."""
    directory = codec.keys_dir()
    ring = codec.KeyRing.rotate(directory)
    older = sorted(set(ring.keys) - {ring.current})
    path = codec.KeyRing.path(directory)
    shared = state.open_state(directory)
    if shared.shared:
        codec.deployment_ring(directory, shared)  # records the new key as staged
    if args.json:
        _print_json({"key": ring.current, "staged": shared.shared, "older": older, "file": str(path)})
        return 0
    if shared.shared:
        print(
            f"payload key {ring.current} added to {path}, staged: it decrypts here but encrypts nowhere yet. "
            "Give the file to every worker, codec server, console and client of the deployment and restart them, "
            f"then run `redress keys activate {ring.current}` (refused while a running process lacks it)."
        )
        return 0
    print(
        f"payload key {ring.current} is now current in {path}; "
        f"{len(older)} older key(s) still decrypt. Copy the file to every worker, client and codec server, "
        "then restart them."
    )
    return 0


def cmd_keys_activate(args: argparse.Namespace) -> int:
    """Make a staged deployment key the one that encrypts, everywhere (shared state only)."""
    directory = codec.keys_dir()
    shared = state.open_state(directory)
    ring = codec.KeyRing.load(directory)
    if args.key_id not in ring.keys:
        print(f"{args.key_id} is not in {codec.KeyRing.path(directory)}", file=sys.stderr)
        return 1
    try:
        shared.activate_key(args.key_id, codec.fingerprint(ring.keys[args.key_id]), force=args.force)
    except state.StateProblem as problem:
        print(str(problem), file=sys.stderr)
        return 1
    print(f"payload key {args.key_id} encrypts from now on in processes that start; running ones switch at restart")
    return 0


def cmd_keys_codec_token(args: argparse.Namespace) -> int:
    from redress import codec_server

    if args.revoke:
        if not codec_server.revoke_token(codec.keys_dir(), args.name):
            print(f"no codec token for {args.name}", file=sys.stderr)
            return 1
        print(f"codec token of {args.name} revoked")
        return 0
    token = codec_server.issue_token(codec.keys_dir(), args.name)
    if args.json:
        _print_json({"name": args.name, "token": token})
    else:
        print(f"codec token for {args.name} (shown once; only its hash is kept):\n{token}")
    return 0


def cmd_codec_server(args: argparse.Namespace) -> int:
    from redress import codec_server

    configure_logging()
    origins = set(args.ui_origin or ["http://localhost:8233", "http://127.0.0.1:8233"])
    with codec_server.CodecServer(
        codec.keys_dir(),
        args.host,
        args.port,
        origins,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        trusted_proxies=args.trust_proxy,
    ) as server:
        print(f"codec server on {server.url} for {', '.join(sorted(origins))}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            server.thread.join()
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from redress.console import ConsoleServer, Settings

    configure_logging()

    async def open_client() -> RedressClient:
        return RedressClient(await connect(args.address), task_queue=args.task_queue)

    settings = Settings(
        rules=Path(args.rules),
        enroll=args.enroll,
        trusted_header=args.trusted_header,
        secure_cookies=bool(args.tls_cert) or args.secure_cookies,
    )
    if not args.port:
        print("console off (port 0)", file=sys.stderr)
        return 0
    try:
        server = ConsoleServer(open_client, settings, args.host, args.port, args.tls_cert, args.tls_key)
    except ValueError as refused:
        print(f"console not started: {refused}", file=sys.stderr)
        return 2
    with server:
        print(f"console on {server.url}", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            server.thread.join()
    return 0


def cmd_keys_passkey(args: argparse.Namespace) -> int:
    from activities.rules import directory as approver_directory

    try:
        edited = approver_directory.register_passkey(Path(args.rules), args.name, args.id, args.public_key)
    except approver_directory.DirectoryEditRefused as refused:
        print(f"not registered: {refused}", file=sys.stderr)
        return 1
    print(f"{args.name}'s passkey is registered in {edited}: it signs from the next decision on")
    return 0


def cmd_erase(args: argparse.Namespace) -> int:
    async def erase(redress: RedressClient) -> Any:
        erased = await redress.erase_customer(args.customer_id)
        if args.json:
            return {"customer_id": args.customer_id, "erased": list(erased), "remaining": erased.remaining}
        return (
            f"erased the personal data of {len(erased)} case(s) of customer {args.customer_id}: "
            f"{', '.join(erased) or '-'}; their anonymous outcomes remain for reports"
            + "".join(f"\nnote: {note}" for note in erased.remaining)
        )

    return asyncio.run(_with_client(args, erase))


def cmd_export_customer(args: argparse.Namespace) -> int:
    """Everything held about a customer, decrypted, as JSON: to --out (readable by its owner alone) or stdout."""
    from redress import subject_access

    async def export(redress: RedressClient) -> str | None:
        _message(DataExported, by=args.by)  # a name the record can keep, checked before anything is read
        document = await subject_access.collect(redress, args.customer_id, args.by)
        text = json.dumps(document, ensure_ascii=False, indent=2)
        if args.out:
            codec.write_private(Path(args.out), text + "\n")
        else:
            print(text)
        await subject_access.record_export(redress, document)  # once it is written
        return f"wrote everything held about {args.customer_id} to {args.out}" if args.out else None

    return asyncio.run(_with_client(args, export))


def _signing_key(name: str, explicit: str | None, unsigned: bool = False):
    """The signer's private key: --key, else $REDRESS_KEYS/NAME.pem if it exists; None to send unsigned."""
    if unsigned:
        return None
    path = Path(explicit) if explicit else _keys_dir(None) / f"{name}.pem"
    if not explicit and not path.exists():
        return None
    return _private_key(path)


def cmd_propose(args: argparse.Namespace) -> int:
    try:
        private_key = _signing_key(args.agent, args.key, args.unsigned)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2

    async def action(redress: RedressClient) -> Any:
        proposal = _message(
            RemedyProposal,
            kind=args.kind,
            amount=args.amount,
            currency=args.currency,
            reason=args.reason,
            proposed_by=args.agent,
        )
        if private_key is None:
            return await redress.propose_remedy(args.id, proposal)
        return await redress.propose(args.id, proposal, private_key)

    return asyncio.run(_with_client(args, action))


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


def _load_or_report(directory: str, as_json: bool = False) -> RuleSet | None:
    """The rule set, or None after printing every problem (file:line:column) to stderr (and as JSON if asked)."""
    from activities.rules import RulesInvalid, load_rules

    try:
        return load_rules(directory)
    except RulesInvalid as invalid:
        if as_json:
            _print_json({"errors": [str(error) for error in invalid.errors]})
        for error in invalid.errors:
            print(error, file=sys.stderr)
        print(f"{len(invalid.errors)} problem(s); rules refused", file=sys.stderr)
        return None


def _rules_folder(args: argparse.Namespace) -> str:
    """`redress rules check DIR` or `--rules DIR` (as explain and lab say it); the shipped `rules` by default."""
    return str(args.rules_dir or args.dir or "rules")


def cmd_rules_check(args: argparse.Namespace) -> int:
    rule_set = _load_or_report(_rules_folder(args), args.json)
    if rule_set is None:
        return 2
    doc = rule_set.document
    if args.json:
        _print_json(
            {
                "version": rule_set.version,
                "warnings": [str(w) for w in rule_set.warnings],
                "rules": len(doc.rules),
                "offers": len(doc.offers),
                "roles": len(doc.approval.roles),
                "approvers": len(doc.approvers),
                "templates": len(doc.templates),
            }
        )
        return 0
    for warning in rule_set.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"rules OK: version {rule_set.version}: {len(doc.rules)} triage rules, {len(doc.offers)} offers, "
        f"{len(doc.approval.roles)} approval roles, {len(doc.approvers)} approvers, {len(doc.templates)} templates"
    )
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from activities.rules.admin_tests import run_admin_tests

    rule_set = _load_or_report(_rules_folder(args), args.json)
    if rule_set is None:
        return 2
    outcomes = run_admin_tests(rule_set)
    failed = [o for o in outcomes if not o.passed]
    if args.json:
        _print_json(
            [{"file": o.file, "name": o.name, "passed": o.passed, "differences": o.differences} for o in outcomes]
        )
        return 1 if failed or not outcomes else 0
    for outcome in outcomes:
        print(f"{'ok  ' if outcome.passed else 'FAIL'} {Path(outcome.file).name}: {outcome.name}")
        for difference in outcome.differences:
            print(f"       {difference}")
    print(f"rules test: {len(outcomes) - len(failed)} passed, {len(failed)} failed (rules {rule_set.version})")
    return 1 if failed or not outcomes else 0


def cmd_rules_explain(args: argparse.Namespace) -> int:
    from activities.io import TriageFacts
    from activities.rules.admin_tests import EXAMPLE_DEFAULTS
    from activities.rules.approvals import check_offer
    from activities.rules.engine import triage
    from redress.client import validate_complaint

    rule_set = _load_or_report(args.rules, args.json)
    if rule_set is None:
        return 2
    try:
        data = json.loads(Path(args.file).read_text(encoding="utf-8"))
        received = {"received_at": datetime.now(UTC).isoformat()}  # as `submit` does: deadlines from now
        complaint = validate_complaint({**EXAMPLE_DEFAULTS, **received, **data})
    except (OSError, ValueError, InvalidComplaint) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2
    result = triage(rule_set, TriageFacts.of(complaint))
    if args.json:
        _print_json(result)
        return 0
    print(f"rules {result.rule_version}: {result.category} / {result.severity.value} / queue {result.queue}")
    if result.decided_by:
        weights = result.evidence or {}
        evidence = ", ".join(f"{c} {w:g}" for c, w in sorted(weights.items(), key=lambda i: -i[1]))
        print(f"  category by evidence: {evidence or 'none'}; {result.decided_by}")
    for name, due in result.deadlines.items():
        print(f"  {name} due {due.isoformat(timespec='minutes')}")
    for offer in result.offers:
        amount = f" {offer.amount} {offer.currency}" if offer.amount else ""
        verdict = check_offer(rule_set, complaint.complaint_id, offer)
        if not verdict.needs_approval:
            approval = "no approval needed"
        elif verdict.group:
            approval = f"needs {verdict.approvers()}, each a different person"
        else:
            approval = (
                f"needs {verdict.required_role} or above (or the signature of a proposer whose authority covers it)"
            )
        print(f"  offer {offer.kind.value}{amount} ({offer.rule}): {approval}")
    print("rules:")
    for firing in result.rules:
        print(f"  {'FIRED' if firing.fired else '  -  '}  {firing.rule}: {firing.reason}")
    return 0


def cmd_rules_lab(args: argparse.Namespace) -> int:
    """How the rules treat a corpus (coverage, accuracy), what another rule set would change (`--against`),
    for a corpus or the running cases (`--open`): activities/rules/lab.py and whatif.py."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from activities.io import TriageFacts
    from activities.rules.lab import MISS_TEXT, Columns, read_corpus, run_lab
    from activities.rules.whatif import compare

    rule_set = _load_or_report(args.rules, args.json)
    other = _load_or_report(args.against, args.json) if args.against else None
    if rule_set is None or (args.against and other is None):
        return 2
    if args.open:
        return _lab_open(args, rule_set, other)
    if not args.corpus:
        print("redress rules lab: give a CORPUS file, or --open for the running cases", file=sys.stderr)
        return 2
    try:
        complaints, refused, without_text = read_corpus(Path(args.corpus), Columns(args.text_column, args.label_column))
        labels = YAML(typ="safe").load(Path(args.labels).read_text(encoding="utf-8")) if args.labels else None
    except (OSError, ValueError, YAMLError) as error:
        print(f"redress: {error}", file=sys.stderr)
        return 2
    if labels is not None and not (isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())):
        print(f"{args.labels}: a mapping from the corpus' labels to categories, one per line", file=sys.stderr)
        return 2
    if not complaints:
        for problem in refused[:20]:
            print(f"{args.corpus}: {problem}", file=sys.stderr)
        column = f"a `{args.text_column}` with text"
        print(f"redress rules lab: no complaint in {args.corpus} ({column} on a line or row)", file=sys.stderr)
        return 2
    mapping = {str(k): v for k, v in (labels or {}).items()}
    known = {rule_set.document.defaults.category} | {r.set.category for r in rule_set.document.rules if r.set.category}
    for label, category in mapping.items():
        if category not in known:
            print(f"{args.labels}: {label!r} maps to {category!r}, which no rule decides", file=sys.stderr)
    report = run_lab(rule_set, complaints, refused, mapping, without_text)
    other_report = run_lab(other, complaints, [], mapping, without_text) if other else None
    what_if = None
    if other is not None:
        lines = (
            (f"line {c.line}", TriageFacts.of(c.complaint), rule_set, c.complaint.text[:MISS_TEXT]) for c in complaints
        )
        what_if = compare(lines, other)
    if args.html:
        from redress.lab_page import render_lab_page

        versions = f"In force: rules {rule_set.version} ({args.rules})" + (
            f"; candidate: rules {other.version} ({args.against})." if other else "."
        )
        page = render_lab_page(args.corpus, report, other_report, what_if, versions)
        if not _write_page(args.html, page):
            return 2
    if args.json:
        found = report.as_json()
        if other_report is not None and what_if is not None:
            found["against"] = {
                "rule_version": other_report.rule_version,
                "accuracy": other_report.as_json()["accuracy"],
            }
            found["what_if"] = what_if.as_json()
        _print_json(found)
        return 0
    for problem in refused:
        print(f"{args.corpus}: {problem}", file=sys.stderr)
    _print_lab(args, report)
    if other_report is not None and what_if is not None:
        before = f"{report.accuracy:.1%}" if report.accuracy is not None else "no labels"
        after = f"{other_report.accuracy:.1%}" if other_report.accuracy is not None else "no labels"
        print(f"\nagainst rules {other_report.rule_version} ({args.against}): accuracy {before} -> {after}")
        _print_what_if(what_if, args.limit)
    if args.html:
        print(f"wrote {args.html}")
    return 0


def _print_lab(args: argparse.Namespace, report: Any) -> None:
    total = max(report.complaints, 1)
    notes = [f"{report.without_text} rows without text skipped"] if report.without_text else []
    notes += [f"{len(report.refused)} refused (on standard error)"] if report.refused else []
    skipped = f" ({', '.join(notes)})" if notes else ""
    print(f"rules {report.rule_version}: {report.complaints} complaints from {args.corpus}{skipped}")
    for title, counter in (("category", report.categories), ("severity", report.severities), ("queue", report.queues)):
        rows = [[key, str(count), f"{count / total:.1%}"] for key, count in counter.most_common()]
        print_table([title, "complaints", "share"], rows)
    share = report.left_to_default / total
    print(f"left to the default category ({report.default_category}): {report.left_to_default} ({share:.1%})")
    if report.default_words:
        words = ", ".join(f"{w} ({n})" for w, n in report.default_words)
        print(f"  commonest words there (keyword candidates): {words}")
    if report.accuracy is not None:
        print(f"accuracy: {report.correct} of {report.labelled} labelled complaints ({report.accuracy:.1%})")
        got = sorted({c for row in report.confusion.values() for c in row})
        rows = [[expected, *(str(report.confusion[expected][c] or "") for c in got)] for expected in report.confusion]
        print_table(["expected \\ triaged", *got], sorted(rows))
        if args.misses:
            print("misses (line, expected -> triaged: why):")
            for miss in report.misses:
                print(f"  {miss.line}: {miss.expected} -> {miss.got}: {miss.why}\n      {miss.text}")


def _print_what_if(what_if: Any, limit: int) -> None:
    from activities.rules.whatif import ASPECTS

    print(f"what would change: {len(what_if.changes)} of {what_if.compared} complaints")
    print_table(["aspect", "complaints changed"], [[name, str(what_if.by_aspect.get(name, 0))] for name in ASPECTS])
    if what_if.category_moves:
        rows = [[old, new, str(n)] for (old, new), n in what_if.category_moves.most_common()]
        print_table(["category was", "would be", "complaints"], rows)
    for change in what_if.changes[:limit]:
        print(
            f"  {change.ref}: "
            + "; ".join(
                f"{name} {change.before.aspect(name)} -> {change.after.aspect(name)}" for name in change.aspects
            )
        )
        if change.note:
            print(f"      {change.note}")
    if len(what_if.changes) > limit:
        print(f"  ... and {len(what_if.changes) - limit} more (--limit, or --json for all)")
    for skipped in what_if.skipped:
        print(f"  not compared: {skipped}")


def _write_page(path: str, page: str) -> bool:
    try:
        Path(path).write_text(page, encoding="utf-8")
    except OSError as error:
        print(f"redress: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return False
    return True


def _lab_open(args: argparse.Namespace, current: RuleSet, against: RuleSet | None) -> int:
    """The running cases: each under the version it is pinned to, against what a retriage would decide now."""
    from activities.io import TriageFacts
    from activities.rules import RulesInvalid
    from activities.rules.store import read_published
    from activities.rules.whatif import WhatIf, decide
    from activities.settings import Settings
    from redress.state import StateUnavailable, open_state

    candidate = against or current
    state = open_state(codec.keys_dir())
    versions_dir = Settings.from_env().rule_versions_dir
    pinned: dict[str, RuleSet | str] = {}  # a version -> its rules, or why they cannot be had here

    def rules_of(version: str) -> RuleSet | str:
        if version not in pinned:
            try:
                found = read_published(version, versions_dir, state)
                pinned[version] = found if found is not None else f"rule version {version!r} is not found here"
            except (StateUnavailable, RulesInvalid) as error:
                pinned[version] = f"rule version {version!r} cannot be read: {error}"
        return pinned[version]

    async def collect(redress: RedressClient) -> WhatIf:
        cases, unread = await redress.open_complaints(limit=args.cases)
        what_if = WhatIf(skipped=list(unread))
        for status, complaint in cases:
            rules_now = rules_of(status.rule_version or "")
            if isinstance(rules_now, str):
                what_if.skipped.append(f"{status.complaint_id}: its {rules_now}")
                continue
            facts = TriageFacts.of(complaint)
            what_if.add(status.complaint_id, decide(rules_now, facts), decide(candidate, facts), status.stage.value)
        return what_if

    async def run() -> WhatIf:
        return await collect(RedressClient(await connect(args.address), task_queue=args.task_queue))

    try:
        what_if = asyncio.run(run())
    except RuntimeError as error:  # the SDK's "Failed client connect"
        print(f"redress: cannot reach Temporal at {args.address or 'the configured address'}: {error}", file=sys.stderr)
        return 2
    if args.html:
        from redress.lab_page import render_lab_page

        versions = (
            f"In force: each case's own version; candidate: rules {candidate.version} ({args.against or args.rules})."
        )
        page = render_lab_page("The running cases", None, None, what_if, versions)
        if not _write_page(args.html, page):
            return 2
    if args.json:
        _print_json({"against": candidate.version, "what_if": what_if.as_json()})
        return 0
    print(f"running cases against rules {candidate.version} ({args.against or args.rules}): "
          f"each under its own version now, and as a retriage would decide it")  # fmt: skip
    _print_what_if(what_if, args.limit)
    if args.html:
        print(f"wrote {args.html}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from redress.schemas import contract_schemas

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


def _positive(text: str) -> int:
    number = int(text)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number}: at least 1")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="redress", description="Durable complaint handling on Temporal.")
    parser.add_argument("--address", help="Temporal frontend (default: TEMPORAL_ADDRESS or localhost:7233)")
    parser.add_argument("--json", action="store_true", help="machine-readable output (also after any command)")
    parser.add_argument(
        "--task-queue",
        default=TASK_QUEUE,
        help="the workers' task queue: new cases go there; list, pending and report read it (default: %(default)s)",
    )
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    add_command = functools.partial(commands.add_parser, parents=[json_flag])

    add_command("worker", help="run the worker (embedded Temporal server unless TEMPORAL_ADDRESS is set)").set_defaults(
        run=cmd_worker
    )
    submit = add_command("submit", help="open a case from a complaint JSON file")
    submit.add_argument("file")
    submit.set_defaults(run=cmd_submit)
    add_command("pending", help="cases awaiting approval: amount, age, required role").set_defaults(run=cmd_pending)
    listing = add_command("list", help="open cases by status, severity, queue, category or deadline (visibility)")
    listing.add_argument("--status", help="stage, e.g. awaiting_approval, in_progress, reopened")
    listing.add_argument("--severity", choices=["general", "urgent", "major"])
    listing.add_argument("--queue")
    listing.add_argument("--category")
    listing.add_argument("--due-within", metavar="SPAN", help="an open deadline falls within SPAN (30m, 4h, 2d)")
    listing.add_argument("--breached", action="store_true", help="only cases that missed a deadline")
    listing.add_argument("--all", action="store_true", help="include ended cases")
    listing.add_argument("--limit", type=int, default=500)
    listing.set_defaults(run=cmd_list)
    report = add_command(
        "report",
        help="handling figures: volume, response/resolution times, breaches, CSAT, "
        "compensation (table, csv, json or html)",
    )
    report.add_argument("--since", help="cases started since: 7d, 24h, or a date (default: all)")
    report.add_argument("--until", help="cases started before this: a span back from now or a date")
    report.add_argument("--by", choices=["day", "week", "month"], default="day", help="period for 'over time'")
    report.add_argument("--format", choices=["table", "csv", "json", "html"], default="table")
    report.add_argument("--out", help="write to this file instead of standard output")
    report.add_argument("--export", metavar="FILE", help="write the case records as JSON Lines instead of a report")
    report.add_argument(
        "--input", metavar="FILE", action="append", help="report from --export files instead of Temporal (repeatable)"
    )
    report.set_defaults(run=cmd_report)
    trend = add_command("trends", help="the daily trend watch's last run: volumes, usual band, forecast, warnings")
    trend.add_argument(
        "--run", dest="run_now", action="store_true", help="run it now (through its schedule) and show that run"
    )
    trend.set_defaults(run=cmd_trends)
    show = add_command("show", help="status and timeline of a case")
    show.add_argument("id", help="complaint id")
    show.set_defaults(run=cmd_show)

    def message_command(name: str, help_: str, method: str, model: type[BaseModel], options, fields) -> None:
        sub = add_command(name, help=help_)
        sub.add_argument("id", help="complaint id")
        for flag, kwargs in options:
            sub.add_argument(flag, **kwargs)
        sub.set_defaults(run=_update_command(method, model, fields))

    message_command(
        "respond",
        "record a response to the customer",
        "record_response",
        ResponseRecord,
        [("--as", {"dest": "agent", "required": True}), ("--message", {})],
        lambda a: {"agent": a.agent, "message": a.message},
    )
    propose = add_command(
        "propose",
        help="propose a remedy; signed with your key when you have one "
        "(within your authority it is then approved at once)",
    )
    propose.add_argument("id", help="complaint id")
    for flag, options in (
        ("--as", {"dest": "agent", "required": True}),
        ("--kind", {"required": True}),
        ("--amount", {"type": Decimal, "default": Decimal("0")}),
        ("--currency", {"default": "CNY"}),
        ("--reason", {"required": True}),
        ("--key", {"help": "your private key file (default: $REDRESS_KEYS/NAME.pem when it exists)"}),
        ("--unsigned", {"action": "store_true", "help": "send it unsigned: it awaits approval"}),
    ):
        propose.add_argument(flag, **options)
    propose.set_defaults(run=cmd_propose)
    for verb in ("approve", "reject"):
        decide = add_command(verb, help=f"{verb} the remedy awaiting approval, signed with your key")
        decide.add_argument("id", help="complaint id")
        decide.add_argument("--as", dest="approver", required=True)
        decide.add_argument("--key", help="your private key file (default: $REDRESS_KEYS/NAME.pem, keys/ if unset)")
        decide.add_argument("--proposal", help="the proposal you mean to decide (refused if another is pending)")
        decide.add_argument("--note", "--reason", dest="note", help="why (recorded in the timeline)")
        decide.set_defaults(run=cmd_decide, verb=verb)
    keys = add_command("keys", help="approvers' signing keys (new, revoke), payload keys (rotate), codec tokens")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    add_keys_command = functools.partial(keys_commands.add_parser, parents=[json_flag])
    new_key = add_keys_command("new", help="create a key pair; --register puts the public key in the directory")
    new_key.add_argument("name")
    new_key.add_argument("--role", help="their role (needed when --register adds someone new)")
    new_key.add_argument("--dir", help="where to write NAME.pem (default: $REDRESS_KEYS or keys/)")
    new_key.add_argument(
        "--register",
        action="store_true",
        help="write the public key into the rules' approver directory (comments kept)",
    )
    new_key.add_argument(
        "--rules",
        default=os.environ.get("REDRESS_RULES", "rules"),
        help="the rules folder (default: $REDRESS_RULES or rules)",
    )
    new_key.set_defaults(run=cmd_keys_new)
    revoke_key = add_keys_command(
        "revoke", help="revoke a person's signing key and passkeys (or one passkey): they decide nothing from now on"
    )
    revoke_key.add_argument("name")
    revoke_key.add_argument("--passkey", metavar="CREDENTIAL_ID", help="revoke this passkey (its id in the directory)")
    revoke_key.add_argument("--rules", default=os.environ.get("REDRESS_RULES", "rules"))
    revoke_key.set_defaults(run=cmd_keys_revoke)
    passkey = add_keys_command("passkey", help="add a passkey the console registered (its entry) to the directory")
    passkey.add_argument("name")
    passkey.add_argument("--id", required=True, help="the credential id (base64url), as the console showed it")
    passkey.add_argument("--public-key", required=True, help="its COSE public key (base64url)")
    passkey.add_argument("--rules", default=os.environ.get("REDRESS_RULES", "rules"))
    passkey.set_defaults(run=cmd_keys_passkey)
    rotate = add_keys_command(
        "rotate", help="new current payload-encryption key (older ones still decrypt); $REDRESS_PAYLOAD_KEYS or keys/"
    )
    rotate.set_defaults(run=cmd_keys_rotate)
    activate = add_keys_command(
        "activate", help="shared state: make a staged payload key the one that encrypts, once every process holds it"
    )
    activate.add_argument("key_id")
    activate.add_argument("--force", action="store_true", help="even though a running process lacks it")
    activate.set_defaults(run=cmd_keys_activate)
    token = add_keys_command("codec-token", help="issue (or --revoke) the codec-server token of a person")
    token.add_argument("name")
    token.add_argument("--revoke", action="store_true")
    token.set_defaults(run=cmd_keys_codec_token)
    console = add_command("console", help="the web console: inbox, cases, decisions signed with passkeys")
    console.add_argument("--host", default="127.0.0.1")
    console.add_argument("--port", type=int, default=int(os.environ.get("REDRESS_CONSOLE_PORT", "8090")), help="0: off")
    console.add_argument("--rules", default=os.environ.get("REDRESS_RULES", "rules"), help="the directory's folder")
    console.add_argument(
        "--enroll",
        action="store_true",
        help="development: whoever reaches the console may register a passkey for a person who has none",
    )
    console.add_argument(
        "--trusted-header",
        default=os.environ.get("REDRESS_CONSOLE_TRUSTED_HEADER"),
        help="production: the identity-aware proxy's header naming the person (e.g. X-Auth-Request-Preferred-Username)",
    )
    console.add_argument("--tls-cert")
    console.add_argument("--tls-key")
    console.add_argument("--secure-cookies", action="store_true", help="TLS ends at a proxy in front: cookies Secure")
    console.set_defaults(run=cmd_console)
    server = add_command("codec-server", help="decrypt payloads for the Temporal UI and CLI, for token holders")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8081)
    server.add_argument(
        "--ui-origin",
        action="append",
        help="the Temporal UI's origin allowed by CORS (repeatable; default http://localhost:8233)",
    )
    server.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM); session cookies are then Secure")
    server.add_argument("--tls-key", help="the certificate's private key (PEM)")
    server.add_argument(
        "--trust-proxy",
        metavar="IPS",
        help="addresses of a TLS-terminating proxy whose X-Forwarded-Proto/For headers are believed",
    )
    server.set_defaults(run=cmd_codec_server)
    erase = add_command(
        "erase-customer",
        help="erase a customer's personal data from their ended cases "
        "(crypto-shredding; anonymous outcomes stay for reports)",
    )
    erase.add_argument("customer_id")
    erase.set_defaults(run=cmd_erase)
    export = add_command(
        "export-customer",
        help="everything held about a customer, decrypted, as JSON (a subject-access request; recorded as yours)",
    )
    export.add_argument("customer_id")
    export.add_argument("--as", dest="by", required=True, help="who makes the export (kept in the record)")
    export.add_argument("--out", help="write to this file (mode 0600) instead of standard output")
    export.set_defaults(run=cmd_export_customer)
    message_command(
        "resolve",
        "mark the case resolved",
        "resolve",
        Resolution,
        [
            ("--as", {"dest": "agent", "required": True}),
            ("--summary", {"required": True}),
            ("--root-cause", {"help": "why it happened: one of the rules' root_causes (`show` lists them)"}),
        ],
        lambda a: {"agent": a.agent, "summary": a.summary, "root_cause": a.root_cause},
    )
    evidence = add_command(
        "evidence",
        help="put evidence on the case: where it is kept and its SHA-256 (never the file itself); "
        "a remedy held for evidence of this kind goes on",
    )
    evidence.add_argument("id", help="complaint id")
    evidence.add_argument("--kind", required=True, choices=[k.value for k in EvidenceKind])
    evidence.add_argument("--ref", help="where it is kept (a URL or a store's key; default: the --file's path)")
    digest = evidence.add_mutually_exclusive_group(required=True)
    digest.add_argument("--file", help="a copy of it here: its SHA-256 is computed (the file is not sent)")
    digest.add_argument("--sha256", help="its SHA-256 (hex), computed where it is kept")
    evidence.add_argument("--note")
    evidence.add_argument("--by", required=True, help="who adds it: your name, or `customer`")
    evidence.set_defaults(run=_update_command("add_evidence", Evidence, _evidence_fields))
    message_command(
        "feedback",
        "record the customer's CSAT (1-5)",
        "customer_feedback",
        Feedback,
        [("--score", {"type": int, "required": True}), ("--comment", {})],
        lambda a: {"score": a.score, "comment": a.comment},
    )
    message_command(
        "ask",
        "ask the customer something; deadline clocks pause until they reply",
        "await_customer",
        CustomerQuestion,
        [("--as", {"dest": "agent", "required": True}), ("--question", {"required": True})],
        lambda a: {"agent": a.agent, "question": a.question},
    )
    message_command(
        "reply",
        "record the customer's reply; the clocks run again",
        "customer_replied",
        CustomerReply,
        [("--message", {"required": True})],
        lambda a: {"message": a.message},
    )
    message_command(
        "retriage",
        "decide the case again with the current rules (deadlines follow)",
        "retriage",
        Retriage,
        [("--as", {"dest": "by", "required": True}), ("--reason", {"required": True})],
        lambda a: {"by": a.by, "reason": a.reason},
    )
    message_command(
        "severity",
        "re-tier the case (its open deadlines are recomputed)",
        "change_severity",
        SeverityChange,
        [
            ("--to", {"dest": "severity", "required": True, "choices": ["general", "urgent", "major"]}),
            ("--as", {"dest": "by", "required": True}),
            ("--reason", {"required": True}),
        ],
        lambda a: {"severity": a.severity, "by": a.by, "reason": a.reason},
    )
    message_command(
        "correct-contact",
        "correct the customer's contact details on an open case; the old ones become unreadable",
        "correct_contact",
        ContactCorrection,
        [("--name", {}), ("--phone", {}), ("--email", {}), ("--by", {"required": True})],
        lambda a: {"name": a.name, "phone": a.phone, "email": a.email, "by": a.by},
    )
    message_command(
        "withdraw",
        "withdraw the complaint",
        "withdraw",
        Withdrawal,
        [("--by", {"required": True}), ("--reason", {})],
        lambda a: {"by": a.by, "reason": a.reason},
    )

    crisis = add_command("crisis", help="a crisis watch: show it, propose and approve one common remedy")
    crisis_commands = crisis.add_subparsers(dest="crisis_command", required=True)
    add_crisis_command = functools.partial(crisis_commands.add_parser, parents=[json_flag])
    add_crisis_command("show", help="declared or not, linked cases, common remedies").add_argument(
        "key", help="e.g. sku:KETTLE-2"
    )
    propose_common = add_crisis_command("propose", help="one remedy for every linked case")
    propose_common.add_argument("key")
    for flag, options in (
        ("--as", {"dest": "agent", "required": True}),
        ("--kind", {"required": True}),
        ("--amount", {"type": Decimal, "default": Decimal("0")}),
        ("--currency", {"default": "CNY"}),
        ("--reason", {"required": True}),
        ("--key", {"dest": "key_file", "help": "your private key file (default: keys/NAME.pem when it exists)"}),
        ("--unsigned", {"action": "store_true"}),
    ):
        propose_common.add_argument(flag, **options)
    approve_common = add_crisis_command("approve", help="the single signed approval for every linked case")
    approve_common.add_argument("key")
    approve_common.add_argument("--as", dest="approver", required=True)
    approve_common.add_argument("--key", dest="key_file", help="your private key file (default: keys/NAME.pem)")
    approve_common.add_argument("--note")
    crisis.set_defaults(run=cmd_crisis)
    customer = add_command("customer", help="a customer's record: complaints, churn watches; or record a purchase")
    customer.add_argument("id", help="customer id")
    customer.add_argument("--purchased", action="store_true", help="record that the customer bought again")
    customer.add_argument("--order", help="the new order's id (with --purchased)")
    customer.add_argument("--flag", metavar="REASON", help="flag for review: every remedy on new cases needs approval")
    customer.add_argument("--clear-flag", action="store_true", help="after review: remove the flag")
    customer.add_argument("--as", dest="by", help="the supervisor flagging or clearing")
    customer.add_argument("--note", help="why the flag is cleared (kept on the record)")
    customer.set_defaults(run=cmd_customer)
    schema = add_command("schema", help="JSON Schema of the workflow input, every message and query result")
    schema.add_argument("--out", help="write to this file instead of standard output")
    schema.set_defaults(run=cmd_schema)
    rules = add_command("rules", help="work with the rule files")
    rules_commands = rules.add_subparsers(dest="rules_command", required=True)
    add_rules_command = functools.partial(rules_commands.add_parser, parents=[json_flag])
    check = add_rules_command("check", help="validate a rules folder; exit 2 on any problem")
    check.add_argument("dir", nargs="?")
    check.add_argument("--rules", dest="rules_dir", help="the rules folder (as the other rules commands say it)")
    check.set_defaults(run=cmd_rules_check)
    test = add_rules_command("test", help="run the admins' rule tests in DIR/tests/*.yaml")
    test.add_argument("dir", nargs="?")
    test.add_argument("--rules", dest="rules_dir", help="the rules folder (as the other rules commands say it)")
    test.set_defaults(run=cmd_rules_test)
    explain = add_rules_command("explain", help="dry-run triage of a complaint: outcome and every rule's why")
    explain.add_argument("file", help="complaint JSON (contact details may be left out)")
    explain.add_argument("--rules", default="rules")
    explain.set_defaults(run=cmd_rules_explain)
    lab = add_rules_command("lab", help="triage a corpus (CSV or JSON Lines): coverage, and accuracy if labelled")
    lab.add_argument("corpus", nargs="?", help="CSV with a header row (text, channel, label, ...) or JSON Lines")
    lab.add_argument("--rules", default="rules")
    lab.add_argument("--labels", help="YAML mapping from the corpus' labels to our categories")
    lab.add_argument("--misses", action="store_true", help="list every labelled complaint triaged otherwise, and why")
    lab.add_argument("--text-column", default="text", help="the corpus' column (or JSON field) with the text")
    lab.add_argument("--label-column", default="label", help="the corpus' column (or JSON field) with the label")
    lab.add_argument("--against", metavar="DIR", help="what-if: what another rules folder would decide differently")
    lab.add_argument(
        "--open", action="store_true", help="what-if for the running cases (each under its pinned version) instead"
    )
    lab.add_argument("--html", metavar="FILE", help="also write the page with charts (as `report --format html`)")
    lab.add_argument(
        "--limit", type=_positive, default=50, help="changes listed on the terminal (default: %(default)s)"
    )
    lab.add_argument(
        "--cases", type=_positive, default=1000, help="with --open: running cases read (default: %(default)s)"
    )
    lab.set_defaults(run=cmd_rules_lab)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args)
    except BrokenPipeError:  # `redress show X | head`: the reader left; not an error
        code = 0
    except (codec.KeyProblem, state.StateProblem, InsecureConnection) as refused:  # say what to do, no traceback
        print(f"redress: {refused}", file=sys.stderr)
        code = 2
    except ModuleNotFoundError as missing:
        if missing.name not in ENGINE:  # the engine is there and something else is missing: a real error
            raise
        command = args.run.__name__.removeprefix("cmd_").replace("_", " ")
        print(
            f"redress: `{command}` runs the engine (workflows/, activities/, worker.py), which this install does "
            "not have: run it from a Redress checkout (its .venv after `make install`, or `python -m redress` "
            "there) or from the image",
            file=sys.stderr,
        )
        code = 2
    _exit_now(code)


def _exit_now(code: int) -> None:
    """Exit without interpreter teardown, once all output is flushed.

    The Temporal client's Rust threads can outlive the event loop; during
    CPython finalization they abort the process about one run in fifteen
    (temporalio/sdk-python#300, seen here as SIGABRT after the work was done).
    Skipping finalization avoids it; nothing of ours needs it.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
