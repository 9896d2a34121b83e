"""The customer record's messages and state, apart from its workflow (workflows/customer.py).

Apart so that the workflow sandbox passes them through: it imports a workflow's
module afresh for each new workflow, and there is a customer record per
customer, so models defined beside the workflow were built again (pydantic
schemas and all) for every new customer.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from redress.contract import Channel, Currency, Customer, Moment, Money, Name, RemedyKind, Seconds

Profile = Annotated[str, Field(max_length=200)]

# Its messages and query, by name (the workflow: workflows/customer.py; started with CUSTOMER_WORKFLOW_TYPE).
COMPLAINT_OPENED = "complaint_opened"  # update: ComplaintOpened -> CustomerFacts, sent by triage
COMPLAINT_ENDED = "complaint_ended"  # signal: ComplaintEnded, sent when a case ends
CUSTOMER_PURCHASED = "customer_purchased"  # signal: Purchase, sent by the order system (RedressClient)
REMEDY_PAID = "remedy_paid"  # signal: Payout, sent when a case has paid the customer
DATA_EXPORTED = "data_exported"  # signal: contract.DataExported, sent by `redress export-customer`
FLAG_CUSTOMER = "flag_customer"  # update: FlagRequest -> CustomerState, by the rules at triage or a supervisor
CLEAR_FLAG = "clear_flag"  # update: FlagClearance -> CustomerState, a supervisor after review
RECORD_QUERY = "record"  # query: CustomerState

MAX_LOG = 50  # entries of the flag log and of the access log kept on the record (newest last)


class ComplaintOpened(BaseModel):
    complaint_id: Name
    order_id: Name | None = None
    received_at: Moment
    window_seconds: Seconds = Field(description="The rules' repeat window (customer.complaints_90d).")


class CustomerFacts(BaseModel):
    """What triage rules may know of a customer's other complaints, and what they were paid."""

    complaints_in_window: int = Field(description="Complaints received in the repeat window, this one included.")
    open_on_order: int = Field(description="Other open complaints about the same order.")
    payouts_in_window: int = Field(default=0, description="Money paid to them in the window (each payout once).")
    paid_in_window: dict[str, Decimal] = Field(default_factory=dict, description="How much, per currency.")
    claims_without_evidence: int = Field(
        default=0, description="Their complaints in the window that were paid with no evidence on the case."
    )
    flag: ClaimantFlag | None = Field(default=None, description="Flagged for review: every remedy needs approval.")
    flag_cleared_until: Moment | None = Field(
        default=None, description="A supervisor cleared a flag: the rules may not flag them again before this."
    )


class ComplaintEnded(BaseModel):
    complaint_id: Name
    stage: Name
    ended_at: Moment
    rule_version: Name | None = None
    customer: Customer
    channel: Channel
    language: Annotated[str, Field(max_length=35)] = "en"
    profile: Profile | None = None
    churn_window_seconds: Seconds | None = Field(default=None, description="None: no churn watch for this case.")


class Payout(BaseModel):
    """A remedy paid to the customer (refund, coupon, points, cash): what `customer.payouts_90d` counts."""

    complaint_id: Name
    proposal_id: Name
    kind: RemedyKind
    amount: Money
    currency: Currency
    at: Moment
    with_evidence: bool = Field(description="Evidence was on the case when it was paid (add_evidence).")
    window_seconds: Seconds = Field(description="The rules' repeat window: how long the record keeps it.")


def paid_per_currency(payouts: list[Payout]) -> dict[str, Decimal]:
    """What the payouts add up to, per currency (the record's facts for triage; `redress customer`)."""
    paid: dict[str, Decimal] = {}
    for payout in payouts:
        paid[payout.currency] = paid.get(payout.currency, Decimal(0)) + payout.amount
    return paid


class ClaimantFlag(BaseModel):
    """The customer is flagged for review: every remedy on their new cases needs an approver's decision.

    For staff only: it is never an accusation, and the customer is never told of it.
    """

    reason: Annotated[str, Field(min_length=1, max_length=500)]
    by: Name = Field(description="`rules:<flag rule>`, or the supervisor who flagged them.")
    at: Moment
    complaint_id: Name | None = Field(default=None, description="The case whose triage flagged them.")
    cleared_for_seconds: Seconds = Field(
        default=90 * 86400, description="Once a supervisor clears it, the rules may not flag them again for this long."
    )


class FlagRequest(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=500)]
    by: Name
    complaint_id: Name | None = None
    keep_seconds: Seconds = Field(
        default=90 * 86400, description="The record, with its flag, lives at least this long from now."
    )
    cleared_for_seconds: Seconds = Field(
        default=90 * 86400,
        description="Once cleared, the rules may not flag them again for this long (rules: repeat.cleared_for).",
    )


class FlagClearance(BaseModel):
    """A supervisor reviewed the flag and removes it; the rules may not flag the customer again for a while."""

    by: Name
    note: Annotated[str, Field(max_length=2000)] | None = None
    for_seconds: Seconds | None = Field(
        default=None, description="The rules may not flag them again for this long (default: the flag's own)."
    )


class FlagEvent(BaseModel):
    action: Literal["flagged", "cleared"]
    by: Name
    at: Moment
    reason: Annotated[str, Field(max_length=2000)] | None = None


class AccessEvent(BaseModel):
    """Someone read out everything held about the customer (a subject-access request)."""

    action: Literal["exported"]
    by: Name
    at: Moment
    cases: int = Field(default=0, ge=0, le=1_000_000)


class Purchase(BaseModel):
    at: Moment | None = None
    order_id: Name | None = None


class CaseEntry(BaseModel):
    complaint_id: Name
    order_id: Name | None = None
    received_at: Moment
    open: bool = True


class ChurnWatch(BaseModel):
    ended: ComplaintEnded
    due: Moment


class CareOrder(BaseModel):
    """The send_care_package activity's input: the watch ran out with no purchase."""

    customer_id: str
    ended: ComplaintEnded


class CustomerState(BaseModel):
    """Every date zone-aware and bounded (contract.Moment): the run does arithmetic on them."""

    customer_id: Name = Field(description="The customer's pseudonym (codec.KeyRing.pseudonym), not their id.")
    cases: list[CaseEntry] = Field(default_factory=list)
    watches: list[ChurnWatch] = Field(default_factory=list)
    last_purchase_at: Moment | None = None
    care_sent: list[str] = Field(default_factory=list, description="Complaints whose care package went out.")
    keep_until: Moment | None = None
    payouts: list[Payout] = Field(default_factory=list, description="Paid within the window.")
    flag: ClaimantFlag | None = None
    flag_cleared_until: Moment | None = None
    flag_log: list[FlagEvent] = Field(default_factory=list, description="Flagged and cleared, newest last.")
    access_log: list[AccessEvent] = Field(default_factory=list, description="Exports of their data, newest last.")
