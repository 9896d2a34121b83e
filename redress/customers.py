"""The customer record's messages and state, apart from its workflow (workflows/customer.py).

Apart so that the workflow sandbox passes them through: it imports a workflow's
module afresh for each new workflow, and there is a customer record per
customer, so models defined beside the workflow were built again (pydantic
schemas and all) for every new customer.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from redress.contract import Channel, Customer, Moment, Name, Seconds

Profile = Annotated[str, Field(max_length=200)]

# Its messages and query, by name (the workflow: workflows/customer.py; started with CUSTOMER_WORKFLOW_TYPE).
COMPLAINT_OPENED = "complaint_opened"  # update: ComplaintOpened -> CustomerFacts, sent by triage
COMPLAINT_ENDED = "complaint_ended"  # signal: ComplaintEnded, sent when a case ends
CUSTOMER_PURCHASED = "customer_purchased"  # signal: Purchase, sent by the order system (RedressClient)
RECORD_QUERY = "record"  # query: CustomerState


class ComplaintOpened(BaseModel):
    complaint_id: Name
    order_id: Name | None = None
    received_at: Moment
    window_seconds: Seconds = Field(description="The rules' repeat window (customer.complaints_90d).")


class CustomerFacts(BaseModel):
    """What triage rules may know of a customer's other complaints."""

    complaints_in_window: int = Field(description="Complaints received in the repeat window, this one included.")
    open_on_order: int = Field(description="Other open complaints about the same order.")


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
