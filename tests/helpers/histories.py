"""A case's history as the server stores it, and every payload in it: where personal data must not be plain."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowHistory

from tests.helpers.cases import complaint


def personal_complaint(customer_id: str | None = None, **overrides: Any) -> tuple[dict[str, Any], list[bytes]]:
    """A complaint whose personal data is unique to it, and those values as bytes (to look for in histories)."""
    marker = uuid.uuid4().hex[:8]
    data = complaint(
        customer={
            "id": customer_id or f"cust-{uuid.uuid4().hex[:8]}",
            "name": f"Ingrid Halvorsen{marker}",
            "phone": f"+47 {int(marker, 16) % 10**8:08d}",
            "email": f"ingrid.{marker}@example.org",
            "language": "en",
        },
        text=f"My kettle {marker} leaks and I was charged twice, please refund me.",
        **overrides,
    )
    # the customer id is a pseudonym and stays readable (search attribute, record id); the rest must not
    secrets = [data["customer"]["name"], data["customer"]["phone"], data["customer"]["email"], data["text"]]
    return data, [s.encode() for s in secrets]


def payloads_in(message: Message) -> list[Payload]:
    """Every Payload anywhere in a protobuf message (inputs, results, signals, updates, failures, headers).

    Search attributes are left out: they are plain by design (indexed) and carry no personal data.
    """
    found = []
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            if isinstance(item, Payload):
                found.append(item)
            elif isinstance(item, Message):
                found.extend(payloads_in(item))
    return found


async def stored_history(env: Any, workflow_id: str) -> WorkflowHistory:
    """The history as the server keeps it: fetched by a client that has no codec."""
    plain = await Client.connect(env.client.service_client.config.target_host, namespace=env.client.namespace)
    return await plain.get_workflow_handle(workflow_id).fetch_history()


def raw(history: WorkflowHistory) -> bytes:
    return b"".join(event.SerializeToString() for event in history.events)
