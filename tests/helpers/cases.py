"""A valid complaint, and waiting for a case to get somewhere (timers and visibility are asynchronous)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from redress.client import RedressClient
from redress.contract import ResponseRecord
from tests.helpers.peer import Peer


def complaint(**overrides: Any) -> dict[str, Any]:
    """A valid complaint as plain JSON, with a fresh id."""
    data: dict[str, Any] = {
        "complaint_id": f"T-{uuid.uuid4().hex[:10]}",
        "customer": {
            "id": f"cust-{uuid.uuid4().hex[:8]}",
            "name": "Li Lei",
            "phone": "+86 138 0000 0000",
            "email": "li.lei@example.com",
            "language": "zh",
        },
        "channel": "app",
        "received_at": datetime.now(UTC).isoformat(),
        "text": "订单重复扣费，请退款。",
        "order": {"id": "SO-1001", "value": "300.00", "currency": "CNY", "items": [{"sku": "KETTLE-2", "quantity": 1}]},
        "tags": [],
    }
    data.update(overrides)
    return data


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.2) -> Any:
    """Poll until `check` returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


async def stage_is(redress: RedressClient, complaint_id: str, *stages: str, timeout: float = 20.0) -> Any:
    """The case's status once it is in one of `stages`."""

    async def check() -> Any:
        status = await redress.status(complaint_id)
        return status if status.stage.value in stages else None

    return await eventually(check, timeout=timeout)


async def open_case(redress: RedressClient, respond_as: str | None = None, **overrides: Any) -> str:
    """Submit a complaint, wait for its acknowledgement and, if asked, record an agent's first response."""
    data = complaint(**overrides)
    await redress.submit(data)
    await stage_is(redress, data["complaint_id"], "acknowledged")
    if respond_as:
        await redress.record_response(data["complaint_id"], ResponseRecord(agent=respond_as))
    return data["complaint_id"]


async def notices(peer: Peer, complaint_id: str, template: str) -> list[Any]:
    """Notices the peer acted on for this case and template (for `eventually`: they are sent asynchronously)."""
    return peer.acted("/notify", complaint_id=complaint_id, template=template)
