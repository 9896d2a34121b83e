"""Custom search attributes: what supervisors filter by in the Temporal UI and `redress list`.

Example: ComplaintStatus = "awaiting_approval" AND Severity = "major".
The worker registers them on an embedded dev server; on a shared cluster an
operator creates them once (see README).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from temporalio.common import SearchAttributeKey

COMPLAINT_STATUS = SearchAttributeKey.for_keyword("ComplaintStatus")
SEVERITY = SearchAttributeKey.for_keyword("Severity")
CATEGORY = SearchAttributeKey.for_keyword("Category")
QUEUE = SearchAttributeKey.for_keyword("Queue")
CHANNEL = SearchAttributeKey.for_keyword("Channel")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
FIRST_RESPONSE_DUE = SearchAttributeKey.for_datetime("FirstResponseDue")
RESOLUTION_DUE = SearchAttributeKey.for_datetime("ResolutionDue")
NEXT_UPDATE_DUE = SearchAttributeKey.for_datetime("NextUpdateDue")
ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
BREACHED = SearchAttributeKey.for_bool("Breached")  # one of the customer's deadlines was missed
# the running team clock (OLA), cleared once met: an Int of Unix seconds, as SQL visibility stores three Datetime
# attributes at most per namespace (ours: the customer's three deadlines). `TeamDue < 1764590400`.
TEAM_DUE = SearchAttributeKey.for_int("TeamDue")
TEAM_BREACHED = SearchAttributeKey.for_bool("TeamBreached")  # a team clock was missed
# what the trend watch counts by (workflows/trends.py): the UTC day a complaint was received on ("2026-11-30"),
# which a backdated complaint keeps, unlike the workflow's start time; and the order's product SKU
RECEIVED_DAY = SearchAttributeKey.for_keyword("ReceivedDay")
PRODUCT = SearchAttributeKey.for_keyword("Product")

ALL: list[SearchAttributeKey[Any]] = [
    COMPLAINT_STATUS,
    SEVERITY,
    CATEGORY,
    QUEUE,
    CHANNEL,
    CUSTOMER_ID,
    FIRST_RESPONSE_DUE,
    RESOLUTION_DUE,
    NEXT_UPDATE_DUE,
    ESCALATION_LEVEL,
    BREACHED,
    TEAM_DUE,
    TEAM_BREACHED,
    RECEIVED_DAY,
    PRODUCT,
]
DUE_KEYS: dict[str, SearchAttributeKey[datetime]] = {
    "first_response": FIRST_RESPONSE_DUE,
    "resolution": RESOLUTION_DUE,
    "next_update": NEXT_UPDATE_DUE,
}


def received_day(moment: datetime) -> str:
    """The ReceivedDay of a complaint received at `moment`: its UTC date, as the trend watch counts days."""
    return moment.astimezone(UTC).date().isoformat()
