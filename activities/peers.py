"""Calling HTTP peers (notification, payment) safely under retries.

Every request carries an Idempotency-Key, the same on every attempt, so a peer
that honours it acts once however often Temporal retries. Timeouts, connection
errors, 429 and 5xx are raised as retryable; any other 4xx means the peer
refused the request itself, and retrying cannot help.
"""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

PEER_REFUSED = "PeerRefused"


async def post_idempotent(client: httpx.AsyncClient, url: str, key: str, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        response = await client.post(url, json=payload, headers={"Idempotency-Key": key})
    except httpx.TimeoutException as error:
        raise RuntimeError(f"{url}: timed out ({type(error).__name__}); will retry") from None
    except httpx.TransportError as error:
        raise RuntimeError(f"{url}: {type(error).__name__}: {error}; will retry") from None
    if response.status_code >= 500 or response.status_code == 429:
        raise RuntimeError(f"{url}: HTTP {response.status_code}; will retry")
    if response.status_code >= 400:
        # neither the peer's body nor its reason phrase is quoted: either may echo the request (a customer's
        # phone, their message), and this message reaches logs and the case's timeline
        raise ApplicationError(
            f"{url} refused the request: HTTP {response.status_code}",
            type=PEER_REFUSED,
            non_retryable=True,
        )
    if not response.content:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
