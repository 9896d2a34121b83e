"""A subject-access request: everything Redress holds about one customer, decrypted, as one JSON document.

The customer's cases are found through visibility by their pseudonym (the only
form of their id it holds), then read through the cases' own queries: what the
customer sent (contacts and all), where each case stands, every timeline event
and the remedies, and the anonymous outcome of those that ended. A case whose
input names another customer is left out and counted (`skipped`): the pseudonym
is keyed, so that would take a collision, but an export must never carry
another person's data. Erased cases are listed as erased: nothing personal of
them is left to give.

Reading out a person's data is itself recorded: in the timeline of each open
case (`data_exported`) and in the customer's record (`access_log`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from temporalio.service import RPCError

from redress.client import NotFound, RedressClient, RedressError
from redress.contract import (
    CUSTOMER_WORKFLOW_TYPE,
    WORKFLOW_ID_PREFIX,
    ComplaintInput,
    DataExported,
    Outcome,
    Status,
    TimelineEvent,
    records_queue,
)
from redress.customers import DATA_EXPORTED, CustomerState

READ_AT_ONCE = 8  # cases read concurrently


async def export_customer(redress: RedressClient, customer_id: str, by: str) -> dict[str, Any]:
    """Everything held about `customer_id`, as plain JSON; the export is recorded as made by `by`.

    A caller that writes the document somewhere should rather `collect` it, write it, then
    `record_export` (as `redress export-customer` does): an export that failed to be written
    is then not recorded as made.
    """
    document = await collect(redress, customer_id, by)
    await record_export(redress, document)
    return document


async def collect(redress: RedressClient, customer_id: str, by: str) -> dict[str, Any]:
    """Everything held about `customer_id`, as plain JSON (nothing is recorded yet)."""
    running, ended = await redress.cases_of(customer_id)
    gate = asyncio.Semaphore(READ_AT_ONCE)

    async def read(workflow_id: str) -> dict[str, Any]:
        async with gate:
            return await _case(redress, workflow_id.removeprefix(WORKFLOW_ID_PREFIX))

    cases = await asyncio.gather(*(read(workflow_id) for workflow_id in sorted(running + ended)))
    mine = [c for c in cases if c.get("customer_id") in (customer_id, None)]
    return {
        "customer_id": customer_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "exported_by": by,
        "cases": [{k: v for k, v in c.items() if k != "customer_id"} for c in mine],
        "skipped": len(cases) - len(mine),
        "record": await _record(redress, customer_id),
        "open_cases": sorted(running),
    }


async def record_export(redress: RedressClient, document: dict[str, Any]) -> None:
    """Record that `document` (from `collect`) was handed out."""
    exported = DataExported(by=document["exported_by"], cases=len(document["cases"]))
    await _record_the_export(redress, document["customer_id"], exported, document["open_cases"])


async def _record(redress: RedressClient, customer_id: str) -> dict[str, Any] | None:
    """Their record; one that cannot be read is said to be so rather than ending the export."""
    try:
        return (await redress.customer_record(customer_id)).model_dump(mode="json")
    except NotFound:
        return None
    except (RedressError, RPCError, ValidationError) as unreadable:
        return {"unreadable": type(unreadable).__name__}


async def _case(redress: RedressClient, complaint_id: str) -> dict[str, Any]:
    """One case as the customer may see it; `customer_id` (popped later) says whose it is."""
    entry: dict[str, Any] = {"complaint_id": complaint_id}
    try:
        complaint: ComplaintInput | None = await redress.complaint(complaint_id)
        status: Status = await redress.status(complaint_id)
        timeline: list[TimelineEvent] = await redress.timeline(complaint_id)
        refused = await redress.refused_input(complaint_id) if complaint is None else None
    except (RedressError, RPCError, ValidationError) as unreadable:  # erased, or gone: say so, never leave it out
        return {**entry, "customer_id": None, "unreadable": str(unreadable)}
    entry["customer_id"] = complaint.customer.id if complaint else _customer_id_in(refused)
    entry["complaint"] = complaint.model_dump(mode="json") if complaint else None
    if refused is not None:
        entry["refused_input"] = refused  # what they sent, as it came: refused as invalid, but held all the same
    entry["status"] = status.model_dump(mode="json")
    entry["timeline"] = [event.model_dump(mode="json") for event in timeline]
    if status.stage.is_final:
        try:
            outcome: Outcome = await redress.outcome(complaint_id)
            entry["outcome"] = outcome.model_dump(mode="json")
        except (RedressError, RPCError):
            entry["outcome"] = None
    return entry


def _customer_id_in(raw: Any) -> str | None:
    customer = raw.get("customer") if isinstance(raw, dict) else None
    value = customer.get("id") if isinstance(customer, dict) else None
    return value if isinstance(value, str) else None


async def _record_the_export(
    redress: RedressClient, customer_id: str, exported: DataExported, running: list[str]
) -> None:
    """In the customer's record (started if they have none) and in the timeline of each of their open cases."""
    await redress.client.start_workflow(
        CUSTOMER_WORKFLOW_TYPE,
        CustomerState(customer_id=redress.customer_ref(customer_id)),
        id=redress.customer_record_id(customer_id),
        task_queue=records_queue(redress.task_queue),
        start_signal=DATA_EXPORTED,
        start_signal_args=[exported],
    )
    for workflow_id in running:
        try:
            await redress.client.get_workflow_handle(workflow_id).signal(DATA_EXPORTED, exported)
        except RPCError:  # it ended meanwhile: its history holds what was read
            continue
