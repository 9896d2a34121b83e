"""The typed Python client other services import to open and work complaint cases.

It speaks the same plain JSON contract any language can (redress/contract.py),
validates before anything reaches Temporal, and turns Temporal's errors into
three that callers can act on: AlreadyExists, NotFound, Refused(reason).

Connection settings come from Temporal's standard environment variables
(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS_*), read by
temporalio.envconfig.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, Field, ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.envconfig import ClientConfig
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError, RPCStatusCode

from redress import codec, signatures
from redress import search_attributes as sa
from redress.contract import (
    CUSTOMER_WORKFLOW_TYPE,
    FUTURE_TOLERANCE,
    TASK_QUEUE,
    WORKFLOW_ID_PREFIX,
    WORKFLOW_TYPE,
    ApprovalDecision,
    ComplaintInput,
    ContactCorrection,
    CustomerQuestion,
    CustomerReply,
    Evidence,
    EvidenceRecord,
    Feedback,
    Outcome,
    ProposalAnswer,
    ProposalRecord,
    ProposalStatus,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Retriage,
    SeverityChange,
    Status,
    TimelineEvent,
    Withdrawal,
    crisis_workflow_id,
    customer_workflow_id,
    describe_validation_error,
    records_queue,
    workflow_id_for,
)
from redress.crises import APPROVE_COMMON_REMEDY, CRISIS_QUERY, PROPOSE_COMMON_REMEDY
from redress.customers import (
    CLEAR_FLAG,
    CUSTOMER_PURCHASED,
    FLAG_CUSTOMER,
    RECORD_QUERY,
    CustomerState,
    FlagClearance,
    FlagRequest,
    Purchase,
)

DEFAULT_ADDRESS = "localhost:7233"
# How long a step waits out a case whose workflow task is being retried (its worker died mid-task), or whose
# worker is too busy to answer before the server's deadline (a restarted worker catching up): the same update
# id is sent again meanwhile, so the step is applied once.
UPDATE_PATIENCE = timedelta(seconds=120)

T = TypeVar("T", bound=BaseModel)


class RedressError(Exception):
    """Base of the errors a caller is expected to handle."""


class InvalidInput(RedressError):
    """Refused before reaching Temporal; `problems` names each bad field or value."""

    what = "input"

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"invalid {self.what}:\n  " + "\n  ".join(problems))


class InvalidComplaint(InvalidInput):
    what = "complaint"


class InvalidMessage(InvalidInput):
    what = "message"


class AlreadyExists(RedressError):
    def __init__(self, complaint_id: str):
        self.complaint_id = complaint_id
        super().__init__(f"complaint {complaint_id} already exists; no second case was opened")


class NotFound(RedressError):
    def __init__(self, complaint_id: str):
        self.complaint_id = complaint_id
        super().__init__(f"no complaint {complaint_id}")


class ErasedCases(list[str]):
    """The erased complaint ids, and what the state store could not make unrecoverable itself (backups, WAL)."""

    def __init__(self, ids: list[str], remaining: list[str]):
        super().__init__(ids)
        self.remaining = remaining


class Erased(RedressError):
    """The case's personal data was erased on request; its anonymous Outcome is all that is left."""

    def __init__(self, complaint_id: str):
        self.complaint_id = complaint_id
        super().__init__(
            f"complaint {complaint_id}: the customer's personal data was erased; "
            "only its anonymous outcome remains (redress report)"
        )


class Refused(RedressError):
    """The case refused a message; `reason` says why. Nothing changed."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def external_cluster_configured() -> bool:
    return bool(os.environ.get("TEMPORAL_ADDRESS"))


def metrics_runtime() -> Runtime | None:
    """A runtime serving Prometheus metrics on REDRESS_METRICS_PORT (unset: no metrics endpoint)."""
    port = os.environ.get("REDRESS_METRICS_PORT")
    if not port:
        return None
    address = f"{os.environ.get('REDRESS_METRICS_HOST', '0.0.0.0')}:{port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


class InsecureConnection(RedressError):
    pass


def is_local(target_host: str) -> bool:
    host = target_host.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")


def check_transport(config: dict[str, Any]) -> None:
    """Refuse plaintext to a server on another host: approvals, keys in transit and metadata would travel in clear.

    REDRESS_ALLOW_PLAINTEXT=1 overrides (a private network you trust; say so in your runbook).
    """
    target = config["target_host"]
    if is_local(target) or config.get("tls") or os.environ.get("REDRESS_ALLOW_PLAINTEXT") == "1":
        return
    raise InsecureConnection(
        f"refusing to connect to {target} without TLS: set TEMPORAL_TLS=true (and TEMPORAL_TLS_CLIENT_CERT_PATH/"
        "TEMPORAL_TLS_CLIENT_KEY_PATH for mTLS, or TEMPORAL_API_KEY), or REDRESS_ALLOW_PLAINTEXT=1 to accept the risk"
    )


async def connect(address: str | None = None, runtime: Runtime | None = None) -> Client:
    """Connect with the Redress data converter: the contract's JSON, encrypted by redress/codec.py."""
    config = ClientConfig.load_client_connect_config()
    config["target_host"] = address or config.get("target_host") or DEFAULT_ADDRESS
    check_transport(dict(config))
    # keys are made on first use only against a local dev server; a shared cluster needs the deployment's keys
    converter = codec.data_converter(create_keys=is_local(config["target_host"]))
    return await Client.connect(**config, runtime=runtime, data_converter=converter)


def validate_complaint(data: ComplaintInput | dict[str, Any], now: datetime | None = None) -> ComplaintInput:
    """Refuse an invalid complaint before it reaches Temporal, naming each bad field."""
    try:
        complaint = data if isinstance(data, ComplaintInput) else ComplaintInput.model_validate(data)
    except ValidationError as invalid:
        raise InvalidComplaint(describe_validation_error(invalid)) from None
    now = now or datetime.now(UTC)
    if complaint.received_at > now + FUTURE_TOLERANCE:
        raise InvalidComplaint([f"complaint.received_at: is in the future ({complaint.received_at.isoformat()})"])
    return complaint


class CaseSummary(BaseModel):
    """A case as visibility lists it (no query to the workflow, so listing needs no worker)."""

    complaint_id: str
    stage: str | None = None
    severity: str | None = None
    category: str | None = None
    queue: str | None = None
    channel: str | None = None
    escalation_level: int = 0
    breached: bool = False
    next_due: datetime | None = Field(default=None, description="The earliest open deadline.")
    next_due_name: str | None = None
    started_at: datetime
    open: bool


PARALLEL_QUERIES = 16  # status queries in flight at once when a listing reads each case


def list_query(
    task_queue: str | None = None,
    stage: str | None = None,
    severity: str | None = None,
    queue: str | None = None,
    category: str | None = None,
    breached: bool | None = None,
    due_within: timedelta | None = None,
    include_ended: bool = False,
    now: datetime | None = None,
) -> str:
    """The visibility query behind `list_cases` (also usable in the Temporal UI and `temporal workflow list`)."""
    parts = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if not include_ended:
        parts.append("ExecutionStatus = 'Running'")
    if task_queue:
        parts.append(f"TaskQueue = {_quoted(task_queue)}")
    for key, value in (
        (sa.COMPLAINT_STATUS, stage),
        (sa.SEVERITY, severity),
        (sa.QUEUE, queue),
        (sa.CATEGORY, category),
    ):
        if value:
            parts.append(f"{key.name} = {_quoted(value)}")
    if breached is not None:
        parts.append(f"{sa.BREACHED.name} = {'true' if breached else 'false'}")
    if due_within is not None:
        limit = ((now or datetime.now(UTC)) + due_within).astimezone(UTC)
        stamp = limit.isoformat().replace("+00:00", "Z")
        parts.append("(" + " OR ".join(f"{key.name} < '{stamp}'" for key in sa.DUE_KEYS.values()) + ")")
    return " AND ".join(parts)


def _quoted(value: str) -> str:
    """A visibility string literal; the value is checked, never spliced in raw."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", value):
        raise InvalidInput([f"filter value {value!r}: use letters, digits and _ . : -"])
    return f"'{value}'"


class RedressClient:
    """Open and work cases. `await RedressClient.connect()`, or wrap a client made with `connect()`."""

    def __init__(self, client: Client, task_queue: str = TASK_QUEUE):
        self.client = client
        self.task_queue = task_queue

    @classmethod
    async def connect(cls, address: str | None = None, task_queue: str = TASK_QUEUE) -> RedressClient:
        """Connect as `connect()` does (TEMPORAL_* variables, the Redress codec) and wrap the client."""
        return cls(await connect(address), task_queue)

    async def submit(self, complaint: ComplaintInput | dict[str, Any]) -> str:
        """Open a case; the complaint id makes this idempotent: a second submit raises AlreadyExists."""
        checked = validate_complaint(complaint)
        try:
            handle = await self.client.start_workflow(
                WORKFLOW_TYPE,
                checked.model_dump(mode="json", exclude_none=True, exclude_unset=True),  # unset: defaults stay defaults
                id=workflow_id_for(checked.complaint_id),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )
        except WorkflowAlreadyStartedError:
            raise AlreadyExists(checked.complaint_id) from None
        return handle.id

    def handle(self, complaint_id: str) -> WorkflowHandle:
        return self.client.get_workflow_handle(workflow_id_for(complaint_id))

    async def status(self, complaint_id: str) -> Status:
        return await self._query(complaint_id, "status", Status)

    async def timeline(self, complaint_id: str) -> list[TimelineEvent]:
        return await self._query(complaint_id, "timeline", list[TimelineEvent])

    async def refused_input(self, complaint_id: str) -> Any:
        """What a complaint refused as invalid sent, as it came (None for an accepted one)."""
        return await self._query(complaint_id, "refused_input", Any)

    async def evidence(self, complaint_id: str) -> list[EvidenceRecord]:
        """The evidence on a case, with where each piece is kept and its note."""
        return await self._query(complaint_id, "evidence", list[EvidenceRecord])

    async def complaint(self, complaint_id: str) -> ComplaintInput | None:
        """What the customer sent: names, contacts, their text (for staff; None if the input was refused)."""
        return await self._query(complaint_id, "complaint", ComplaintInput | None)

    async def open_complaints(self, limit: int = 500) -> tuple[list[tuple[Status, ComplaintInput]], list[str]]:
        """The running cases with their status and complaint (for `redress rules lab --open`), and those that
        could not be read, with why (a case whose worker is down answers no status query)."""
        cases = await self.list_cases(limit=limit)
        gate = asyncio.Semaphore(PARALLEL_QUERIES)
        found: list[tuple[Status, ComplaintInput]] = []
        unread: list[str] = []

        async def read(complaint_id: str) -> None:
            async with gate:
                try:
                    status, complaint = await self.status(complaint_id), await self.complaint(complaint_id)
                except (RedressError, RPCError, codec.KeyProblem) as error:
                    unread.append(f"{complaint_id}: {error}")  # erased, another deployment's key, its worker down
                    return
                if complaint is None:
                    unread.append(f"{complaint_id}: its complaint was refused as invalid")
                else:
                    found.append((status, complaint))

        await asyncio.gather(*(read(case.complaint_id) for case in cases))
        return sorted(found, key=lambda pair: pair[0].complaint_id), sorted(unread)

    async def outcome(self, complaint_id: str) -> Outcome:
        """Wait for the case to end and return its outcome."""
        try:
            handle = self.client.get_workflow_handle(workflow_id_for(complaint_id), result_type=Outcome)
            return await handle.result()
        except RPCError as error:
            raise self._translate(complaint_id, error) from None

    async def pending(self, limit: int = 200) -> list[Status]:
        """Cases awaiting an approval decision, oldest proposal first (from visibility, then each case's status).

        Visibility is eventually consistent: a case may appear a moment after it starts waiting.
        """
        ids = await self.awaiting_approval(limit)
        gate = asyncio.Semaphore(PARALLEL_QUERIES)

        async def status_now(complaint_id: str) -> Status | None:
            async with gate:
                try:
                    return await self.status(complaint_id)
                except (RedressError, RPCError):
                    return None  # decided or ended since visibility was written, or its worker is down: not listable

        found = [s for s in await asyncio.gather(*(status_now(i) for i in ids)) if s and s.pending_approval]
        return sorted(found, key=proposed_at)

    async def awaiting_approval(self, limit: int = 200) -> list[str]:
        """The ids of the running cases whose stage is awaiting_approval, as visibility has them."""
        query = (
            f"ComplaintStatus = 'awaiting_approval' AND ExecutionStatus = 'Running' AND TaskQueue = '{self.task_queue}'"
        )
        return [e.id.removeprefix(WORKFLOW_ID_PREFIX) async for e in self.client.list_workflows(query, limit=limit)]

    async def list_cases(
        self,
        stage: str | None = None,
        severity: str | None = None,
        queue: str | None = None,
        category: str | None = None,
        breached: bool | None = None,
        due_within: timedelta | None = None,
        include_ended: bool = False,
        limit: int = 500,
    ) -> list[CaseSummary]:
        """Cases matching the filters from visibility, soonest deadline first (then oldest)."""
        query = list_query(self.task_queue, stage, severity, queue, category, breached, due_within, include_ended)
        listed = self.client.list_workflows(query, limit=limit)
        # a case whose contact details were corrected went on in a new run: the run it left is not listed
        cases = [self._summary(e) async for e in listed if e.status != WorkflowExecutionStatus.CONTINUED_AS_NEW]
        far = datetime.max.replace(tzinfo=UTC)
        return sorted(cases, key=lambda c: (c.next_due or far, c.started_at))

    @staticmethod
    def _summary(execution: WorkflowExecution) -> CaseSummary:
        attributes = execution.typed_search_attributes
        due = {name: at for name, key in sa.DUE_KEYS.items() if (at := attributes.get(key)) is not None}
        next_name = min(due, key=lambda name: due[name]) if due else None
        return CaseSummary(
            complaint_id=execution.id.removeprefix(WORKFLOW_ID_PREFIX),
            stage=attributes.get(sa.COMPLAINT_STATUS),
            severity=attributes.get(sa.SEVERITY),
            category=attributes.get(sa.CATEGORY),
            queue=attributes.get(sa.QUEUE),
            channel=attributes.get(sa.CHANNEL),
            escalation_level=attributes.get(sa.ESCALATION_LEVEL) or 0,
            breached=bool(attributes.get(sa.BREACHED)),
            next_due=due.get(next_name) if next_name else None,
            next_due_name=next_name,
            started_at=execution.start_time,
            open=execution.status == WorkflowExecutionStatus.RUNNING,
        )

    async def customer_purchased(
        self, customer_id: str, at: datetime | None = None, order_id: str | None = None
    ) -> None:
        """The order system's news that a customer bought again: it ends the churn watch of their closed cases."""
        await self.client.start_workflow(
            CUSTOMER_WORKFLOW_TYPE,
            CustomerState(customer_id=self.customer_ref(customer_id)),
            id=self.customer_record_id(customer_id),
            task_queue=self.task_queue,
            start_signal=CUSTOMER_PURCHASED,
            start_signal_args=[Purchase(at=at, order_id=order_id)],
        )

    async def customer_record(self, customer_id: str) -> CustomerState:
        """A customer's complaints, churn watches and care packages sent (NotFound if none was ever recorded)."""
        try:
            return await self.client.get_workflow_handle(self.customer_record_id(customer_id)).query(
                RECORD_QUERY, result_type=CustomerState
            )
        except RPCError as error:
            raise self._translate(customer_id, error) from None

    async def flag_customer(self, customer_id: str, request: FlagRequest) -> CustomerState:
        """A supervisor flags a customer for review: every remedy on their new cases needs an approver.

        Their record is started if they have none yet (a customer flagged before their first complaint).
        """
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            CUSTOMER_WORKFLOW_TYPE,
            CustomerState(customer_id=self.customer_ref(customer_id)),
            id=self.customer_record_id(customer_id),
            task_queue=records_queue(self.task_queue),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            return await self.client.execute_update_with_start_workflow(
                FLAG_CUSTOMER, request, start_workflow_operation=start, result_type=CustomerState
            )
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            raise Refused(cause.message if isinstance(cause, ApplicationError) else str(cause)) from None

    async def clear_customer_flag(self, customer_id: str, clearance: FlagClearance) -> CustomerState:
        """A supervisor reviewed a customer's flag and removes it (the rules may not flag them again for a while)."""
        return await self._update_workflow(
            self.customer_record_id(customer_id), customer_id, CLEAR_FLAG, clearance, CustomerState
        )

    def customer_ref(self, customer_id: str) -> str:
        """The customer's keyed pseudonym: their `CustomerId` in visibility (codec.KeyRing.pseudonym)."""
        return codec.ring_of(self.client.data_converter).pseudonym(customer_id)

    def customer_record_id(self, customer_id: str) -> str:
        return customer_workflow_id(self.customer_ref(customer_id))

    async def crisis(self, key: str) -> dict[str, Any]:
        """A crisis watch (key like `sku:KETTLE-2`): declared or not, linked complaints, common remedies."""
        try:
            return await self.client.get_workflow_handle(crisis_workflow_id(key)).query(CRISIS_QUERY, result_type=dict)
        except RPCError as error:
            raise self._translate(key, error) from None

    async def propose_common_remedy(
        self, key: str, proposal: RemedyProposal, private_key: Ed25519PrivateKey | None = None
    ) -> dict[str, Any]:
        """One remedy for every complaint linked to the crisis; the answer says whether it awaits approval.

        With the proposer's key it is signed, and approved at once if their authority covers it.
        """
        if private_key is not None:
            next_id = f"C{len((await self.crisis(key))['proposals']) + 1}"
            proposal = _signed_proposal(key, next_id, proposal, private_key, scope=signatures.CRISIS)
        return await self._update_workflow(crisis_workflow_id(key), key, PROPOSE_COMMON_REMEDY, proposal, dict)

    async def approve_common_remedy(
        self, key: str, approver: str, private_key: Ed25519PrivateKey, note: str | None = None
    ) -> dict[str, Any]:
        """Sign and send the single approval; each linked case then verifies it and carries the remedy out once."""
        pending = next(
            (p for p in (await self.crisis(key))["proposals"] if p["status"] == ProposalStatus.awaiting_approval), None
        )
        if pending is None:
            raise Refused("no common remedy awaits approval")
        signed_at = _now_to_the_second()
        terms = signatures.signed_terms(
            key,
            pending["proposal_id"],
            "approve",
            Decimal(pending["amount"]),
            pending["currency"],
            approver,
            signed_at,
            kind=pending["kind"],
            scope=signatures.CRISIS,
        )
        decision = ApprovalDecision(
            proposal_id=pending["proposal_id"],
            approver=approver,
            note=note,
            signed_at=signed_at,
            signature=signatures.sign(private_key, terms),
        )
        return await self.approve_common_remedy_as(key, decision)

    async def approve_common_remedy_as(self, key: str, decision: ApprovalDecision) -> dict[str, Any]:
        """Send a decision signed elsewhere (a passkey in the console) on the crisis' pending common remedy."""
        return await self._update_workflow(crisis_workflow_id(key), key, APPROVE_COMMON_REMEDY, decision, dict)

    async def _update_workflow(
        self, workflow_id: str, name: str, update: Any, message: BaseModel, result_type: type | None = None
    ) -> Any:
        """Send one step as an update, refused steps raised as Refused.

        Every try carries the same update id, so the server applies the step once
        however often it is sent. A worker killed while a step is in its workflow
        task leaves the step admitted; the server then answers "workflow task in
        failed state" until another worker takes the task, and applies the step
        then. Sending it again under a new id would apply it twice: two refunds.
        """
        handle = self.client.get_workflow_handle(workflow_id)
        update_id = f"{getattr(update, '__name__', update)}-{uuid.uuid4()}"
        loop = asyncio.get_running_loop()
        give_up = loop.time() + UPDATE_PATIENCE.total_seconds()
        while True:
            try:
                return await handle.execute_update(update, message, id=update_id, result_type=result_type)
            except WorkflowUpdateFailedError as failed:
                cause = failed.cause
                raise Refused(cause.message if isinstance(cause, ApplicationError) else str(cause)) from None
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                if loop.time() > give_up:
                    raise
            except RPCError as error:
                if not _worth_resending(error) or loop.time() > give_up:
                    raise self._translate(name, error) from None
            await asyncio.sleep(1)

    async def record_response(self, complaint_id: str, response: ResponseRecord) -> Status:
        return await self._update(complaint_id, "record_response", response, Status)

    async def propose_remedy(self, complaint_id: str, proposal: RemedyProposal) -> ProposalAnswer:
        """Send a proposal as it is: unsigned, anything above the rules' automatic limit awaits approval."""
        return await self._update(complaint_id, "propose_remedy", proposal, ProposalAnswer)

    async def propose(
        self, complaint_id: str, proposal: RemedyProposal, private_key: Ed25519PrivateKey
    ) -> ProposalAnswer:
        """Sign the proposal as its proposer: within their authority it is approved at once, else it awaits."""
        return await self.propose_remedy(complaint_id, await self.sign_proposal(complaint_id, proposal, private_key))

    async def sign_proposal(
        self, complaint_id: str, proposal: RemedyProposal, private_key: Ed25519PrivateKey
    ) -> RemedyProposal:
        """The proposal signed by `proposal.proposed_by` for the id it will get (refused if another lands first)."""
        next_id = f"P{len((await self.status(complaint_id)).remedies) + 1}"
        return _signed_proposal(complaint_id, next_id, proposal, private_key)

    async def approve_remedy(self, complaint_id: str, decision: ApprovalDecision) -> ProposalRecord:
        return await self._update(complaint_id, "approve_remedy", decision, ProposalRecord)

    async def reject_remedy(self, complaint_id: str, decision: ApprovalDecision) -> ProposalRecord:
        return await self._update(complaint_id, "reject_remedy", decision, ProposalRecord)

    async def sign_decision(
        self,
        complaint_id: str,
        verb: str,
        approver: str,
        private_key: Ed25519PrivateKey,
        note: str | None = None,
        proposal_id: str | None = None,
    ) -> ApprovalDecision:
        """Sign a decision on the remedy awaiting approval, over the terms the case shows now."""
        pending = (await self.status(complaint_id)).pending_approval
        if pending is None:
            raise Refused("no remedy awaits approval")
        if proposal_id and proposal_id != pending.proposal_id:
            raise Refused(f"unknown or stale proposal {proposal_id}; {pending.proposal_id} awaits a decision")
        signed_at = _now_to_the_second()
        terms = signatures.signed_terms(
            complaint_id, pending.proposal_id, verb, pending.amount, pending.currency, approver, signed_at
        )
        return ApprovalDecision(
            proposal_id=pending.proposal_id,
            approver=approver,
            note=note,
            signed_at=signed_at,
            signature=signatures.sign(private_key, terms),
        )

    async def approve(
        self,
        complaint_id: str,
        approver: str,
        private_key: Ed25519PrivateKey,
        note: str | None = None,
        proposal_id: str | None = None,
    ) -> ProposalRecord:
        decision = await self.sign_decision(complaint_id, "approve", approver, private_key, note, proposal_id)
        return await self.approve_remedy(complaint_id, decision)

    async def reject(
        self,
        complaint_id: str,
        approver: str,
        private_key: Ed25519PrivateKey,
        note: str | None = None,
        proposal_id: str | None = None,
    ) -> ProposalRecord:
        decision = await self.sign_decision(complaint_id, "reject", approver, private_key, note, proposal_id)
        return await self.reject_remedy(complaint_id, decision)

    async def resolve(self, complaint_id: str, resolution: Resolution) -> Status:
        return await self._update(complaint_id, "resolve", resolution, Status)

    async def customer_feedback(self, complaint_id: str, feedback: Feedback) -> Status:
        return await self._update(complaint_id, "customer_feedback", feedback, Status)

    async def await_customer(self, complaint_id: str, question: CustomerQuestion) -> Status:
        return await self._update(complaint_id, "await_customer", question, Status)

    async def customer_replied(self, complaint_id: str, reply: CustomerReply) -> Status:
        return await self._update(complaint_id, "customer_replied", reply, Status)

    async def retriage(self, complaint_id: str, request: Retriage) -> Status:
        return await self._update(complaint_id, "retriage", request, Status)

    async def change_severity(self, complaint_id: str, change: SeverityChange) -> Status:
        return await self._update(complaint_id, "change_severity", change, Status)

    async def withdraw(self, complaint_id: str, withdrawal: Withdrawal) -> Status:
        return await self._update(complaint_id, "withdraw", withdrawal, Status)

    async def correct_contact(self, complaint_id: str, correction: ContactCorrection) -> Status:
        """New contact details for an open case; the old ones become unreadable (the case goes on in a new run
        under a new key, and the old key is shredded)."""
        return await self._update(complaint_id, "correct_contact", correction, Status)

    async def correct_customer_contact(self, customer_id: str, correction: ContactCorrection) -> list[str]:
        """The same correction on every open case of a customer; returns the complaint ids corrected."""
        running, _ = await self.cases_of(customer_id)
        corrected = []
        for workflow_id in running:
            complaint_id = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
            await self.correct_contact(complaint_id, correction)
            corrected.append(complaint_id)
        return corrected

    async def add_evidence(self, complaint_id: str, evidence: Evidence) -> Status:
        """Put a reference and its SHA-256 on the case (the file stays where it is kept)."""
        return await self._update(complaint_id, "add_evidence", evidence, Status)

    async def erase_customer(self, customer_id: str) -> ErasedCases:
        """Erase a customer's personal data from all their ended cases by deleting the cases' keys (redress/codec.py).

        Refused while any of their cases is open (finish or withdraw it first). The
        anonymous Outcome of each case stays readable, so reports still count them.
        Returns the erased complaint ids. Cases are found through visibility, which
        lags a second or so behind a case's start.
        """
        running, ended = await self.cases_of(customer_id)
        if running:
            ids = ", ".join(sorted(i.removeprefix(WORKFLOW_ID_PREFIX) for i in running))
            raise Refused(f"customer {customer_id} has open complaints ({ids}); erase once they have ended")
        _, remaining = codec.erase_subjects(self.client.data_converter, ended)
        return ErasedCases(sorted(i.removeprefix(WORKFLOW_ID_PREFIX) for i in ended), remaining=remaining)

    async def cases_of(self, customer_id: str) -> tuple[list[str], list[str]]:
        """The workflow ids of a customer's cases, running and ended, found through visibility by their pseudonym
        (it lags a second or so behind a case's start)."""
        ref = self.customer_ref(customer_id)  # any id (an e-mail address, a phone); visibility holds its pseudonym
        query = f"WorkflowType = '{WORKFLOW_TYPE}' AND {sa.CUSTOMER_ID.name} = {_quoted(ref)}"
        running: list[str] = []
        ended: list[str] = []
        async for execution in self.client.list_workflows(query):
            if execution.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
                continue  # its case goes on in a later run (a contact correction), listed on its own
            (running if execution.status == WorkflowExecutionStatus.RUNNING else ended).append(execution.id)
        return sorted(set(running)), sorted(set(ended) - set(running))

    def _erased(self, complaint_id: str) -> bool:
        converter = self.client.data_converter
        return isinstance(converter.payload_codec, codec.EncryptionCodec) and converter.payload_codec.subjects.erased(
            workflow_id_for(complaint_id)
        )

    async def _query(self, complaint_id: str, name: str, result_type: Any) -> Any:
        if self._erased(complaint_id):
            raise Erased(complaint_id)
        try:
            return await self.handle(complaint_id).query(name, result_type=result_type)
        except RPCError as error:
            raise self._translate(complaint_id, error) from None

    async def _update(self, complaint_id: str, name: str, message: BaseModel, result_type: type[T]) -> T:
        return await self._update_workflow(workflow_id_for(complaint_id), complaint_id, name, message, result_type)

    @staticmethod
    def _translate(complaint_id: str, error: RPCError) -> Exception:
        if error.status == RPCStatusCode.NOT_FOUND:
            if "completed" in error.message:
                return Refused("the case has ended")
            return NotFound(complaint_id)
        return error


def proposed_at(status: Status) -> datetime:
    """When the case's pending proposal was made (for oldest-first lists; cases without one last)."""
    pending = status.pending_approval
    return (pending.proposed_at if pending else None) or datetime.max.replace(tzinfo=UTC)


def _now_to_the_second() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _signed_proposal(
    subject: str, proposal_id: str, proposal: RemedyProposal, private_key: Ed25519PrivateKey, scope: str | None = None
) -> RemedyProposal:
    signed_at = _now_to_the_second()
    terms = signatures.signed_terms(
        subject,
        proposal_id,
        "propose",
        proposal.amount,
        proposal.currency,
        proposal.proposed_by,
        signed_at,
        kind=proposal.kind.value,
        scope=scope,
    )
    return proposal.model_copy(update={"signed_at": signed_at, "signature": signatures.sign(private_key, terms)})


def _worth_resending(error: RPCError) -> bool:
    """A step the server could not take yet: its case's workflow task is being retried, or the server is away."""
    return "Workflow Task in failed state" in error.message or error.status in (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
    )
