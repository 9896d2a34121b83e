"""JSON Schemas of the contract, for services in other languages: `redress schema`.

The map below names every way in and out of a case; a test checks it covers
every update, signal and query the workflow defines, so the schemas cannot
fall behind the code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from workflows.agent_desk import DeskState, RouteRequest, Routed
from workflows.crisis import CommonRemedy, ComplaintReported, CrisisLink, CrisisState
from workflows.customer import ComplaintEnded, ComplaintOpened, CustomerFacts, CustomerState, Purchase
from workflows.contract import (
    ApprovalDecision,
    ComplaintInput,
    CustomerQuestion,
    CustomerReply,
    Feedback,
    Outcome,
    ProposalAnswer,
    ProposalRecord,
    RemedyProposal,
    Resolution,
    ResponseRecord,
    Retriage,
    SeverityChange,
    Status,
    TimelineEvent,
    Withdrawal,
)

MESSAGES: dict[str, tuple[type[BaseModel], Any]] = {  # update/signal name -> (argument, result)
    "record_response": (ResponseRecord, Status),
    "propose_remedy": (RemedyProposal, ProposalAnswer),
    "approve_remedy": (ApprovalDecision, ProposalRecord),
    "reject_remedy": (ApprovalDecision, ProposalRecord),
    "resolve": (Resolution, Status),
    "customer_feedback": (Feedback, Status),
    "withdraw": (Withdrawal, Status),
    "change_severity": (SeverityChange, Status),
    "await_customer": (CustomerQuestion, Status),
    "customer_replied": (CustomerReply, Status),
    "retriage": (Retriage, Status),
    # sent by a CrisisWatch workflow, not by people
    "crisis_declared": (CrisisLink, None),
    "crisis_remedy": (CommonRemedy, None),
}
QUERIES: dict[str, Any] = {"status": Status, "timeline": list[TimelineEvent]}

# The workflows around cases: a customer's record and a crisis watch (see README "Across cases").
OTHER_WORKFLOWS: dict[str, dict[str, Any]] = {
    "CustomerRecord": {
        "id": "customer-<customer id>", "input": CustomerState,
        "messages": {"complaint_opened": (ComplaintOpened, CustomerFacts), "complaint_ended": (ComplaintEnded, None),
                     "customer_purchased": (Purchase, None)},
        "queries": {"record": CustomerState},
    },
    "CrisisWatch": {
        "id": "crisis-<key>", "input": CrisisState,
        "messages": {"complaint_reported": (ComplaintReported, None),
                     "propose_common_remedy": (RemedyProposal, dict[str, Any]),
                     "approve_common_remedy": (ApprovalDecision, dict[str, Any])},
        "queries": {"crisis": dict[str, Any]},
    },
    "AgentDesk": {
        "id": "desk-<queue>", "input": DeskState,
        "messages": {"route": (RouteRequest, Routed)},
        "queries": {"desk": DeskState},
    },
}


def contract_schemas() -> dict[str, Any]:
    def sent(model: Any) -> dict[str, Any]:  # what a client sends
        return TypeAdapter(model).json_schema(mode="validation")

    def received(model: Any) -> dict[str, Any]:  # what a client gets back
        return TypeAdapter(model).json_schema(mode="serialization")

    return {
        "workflow": {"type": "Complaint", "task_queue": "redress", "id": "complaint-<complaint_id>",
                     "input": sent(ComplaintInput), "result": received(Outcome)},
        "messages": {name: {"argument": sent(argument), "result": received(result)}
                     for name, (argument, result) in MESSAGES.items()},
        "queries": {name: {"result": received(result)} for name, result in QUERIES.items()},
        "other_workflows": {
            name: {"id": spec["id"], "input": sent(spec["input"]),
                   "messages": {m: {"argument": sent(a), "result": received(r)} for m, (a, r) in spec["messages"].items()},
                   "queries": {q: {"result": received(r)} for q, r in spec["queries"].items()}}
            for name, spec in OTHER_WORKFLOWS.items()
        },
    }
