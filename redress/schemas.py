"""JSON Schemas of the contract, for services in other languages: `redress schema`.

The map below names every way in and out of a case; a test checks it covers
every update, signal and query the workflow defines, so the schemas cannot
fall behind the code.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from redress.contract import (
    CRISIS_WORKFLOW_TYPE,
    CUSTOMER_WORKFLOW_TYPE,
    DESK_WORKFLOW_TYPE,
    TASK_QUEUE,
    WORKFLOW_TYPE,
    ApprovalDecision,
    ComplaintInput,
    ContactCorrection,
    CustomerQuestion,
    CustomerReply,
    DataExported,
    Evidence,
    EvidenceRecord,
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
    crisis_workflow_id,
    customer_workflow_id,
    desk_workflow_id,
    workflow_id_for,
)
from redress.crises import (
    APPROVE_COMMON_REMEDY,
    COMPLAINT_REPORTED,
    CRISIS_QUERY,
    PROPOSE_COMMON_REMEDY,
    CommonRemedy,
    ComplaintReported,
    CrisisLink,
    CrisisState,
)
from redress.customers import (
    CLEAR_FLAG,
    COMPLAINT_ENDED,
    COMPLAINT_OPENED,
    CUSTOMER_PURCHASED,
    DATA_EXPORTED,
    FLAG_CUSTOMER,
    RECORD_QUERY,
    REMEDY_PAID,
    ComplaintEnded,
    ComplaintOpened,
    CustomerFacts,
    CustomerState,
    FlagClearance,
    FlagRequest,
    Payout,
    Purchase,
)
from redress.desks import DESK_QUERY, ROUTE, DeskState, Routed, RouteRequest

MESSAGES: dict[str, tuple[type[BaseModel], Any]] = {  # update/signal name -> (argument, result)
    "record_response": (ResponseRecord, Status),
    "propose_remedy": (RemedyProposal, ProposalAnswer),
    "approve_remedy": (ApprovalDecision, ProposalRecord),
    "reject_remedy": (ApprovalDecision, ProposalRecord),
    "resolve": (Resolution, Status),
    "customer_feedback": (Feedback, Status),
    "withdraw": (Withdrawal, Status),
    "add_evidence": (Evidence, Status),
    "correct_contact": (ContactCorrection, Status),
    "change_severity": (SeverityChange, Status),
    "await_customer": (CustomerQuestion, Status),
    "customer_replied": (CustomerReply, Status),
    "retriage": (Retriage, Status),
    # sent by a CrisisWatch workflow, not by people
    "crisis_declared": (CrisisLink, None),
    "crisis_remedy": (CommonRemedy, None),
    # sent by `redress export-customer`
    "data_exported": (DataExported, None),
}
QUERIES: dict[str, Any] = {
    "status": Status,
    "timeline": list[TimelineEvent],
    "complaint": ComplaintInput | None,
    "evidence": list[EvidenceRecord],
    "refused_input": Any,
}

# The workflows around cases: a customer's record and a crisis watch (see README "Across cases").
OTHER_WORKFLOWS: dict[str, dict[str, Any]] = {
    CUSTOMER_WORKFLOW_TYPE: {
        "id": customer_workflow_id("<pseudonym of the customer id>"),
        "input": CustomerState,
        "messages": {
            COMPLAINT_OPENED: (ComplaintOpened, CustomerFacts),
            COMPLAINT_ENDED: (ComplaintEnded, None),
            CUSTOMER_PURCHASED: (Purchase, None),
            REMEDY_PAID: (Payout, None),
            FLAG_CUSTOMER: (FlagRequest, CustomerState),
            CLEAR_FLAG: (FlagClearance, CustomerState),
            DATA_EXPORTED: (DataExported, None),
        },
        "queries": {RECORD_QUERY: CustomerState},
    },
    CRISIS_WORKFLOW_TYPE: {
        "id": crisis_workflow_id("<key>"),
        "input": CrisisState,
        "messages": {
            COMPLAINT_REPORTED: (ComplaintReported, None),
            PROPOSE_COMMON_REMEDY: (RemedyProposal, dict[str, Any]),
            APPROVE_COMMON_REMEDY: (ApprovalDecision, dict[str, Any]),
        },
        "queries": {CRISIS_QUERY: dict[str, Any]},
    },
    DESK_WORKFLOW_TYPE: {
        "id": desk_workflow_id("<queue>"),
        "input": DeskState,
        "messages": {ROUTE: (RouteRequest, Routed)},
        "queries": {DESK_QUERY: DeskState},
    },
}


def contract_schemas() -> dict[str, Any]:
    def sent(model: Any) -> dict[str, Any]:  # what a client sends
        return TypeAdapter(model).json_schema(mode="validation")

    def received(model: Any) -> dict[str, Any]:  # what a client gets back
        return TypeAdapter(model).json_schema(mode="serialization")

    return {
        "workflow": {
            "type": WORKFLOW_TYPE,
            "task_queue": TASK_QUEUE,
            "id": workflow_id_for("<complaint_id>"),
            "input": sent(ComplaintInput),
            "result": received(Outcome),
        },
        "messages": {
            name: {"argument": sent(argument), "result": received(result)}
            for name, (argument, result) in MESSAGES.items()
        },
        "queries": {name: {"result": received(result)} for name, result in QUERIES.items()},
        "other_workflows": {
            name: {
                "id": spec["id"],
                "input": sent(spec["input"]),
                "messages": {m: {"argument": sent(a), "result": received(r)} for m, (a, r) in spec["messages"].items()},
                "queries": {q: {"result": received(r)} for q, r in spec["queries"].items()},
            }
            for name, spec in OTHER_WORKFLOWS.items()
        },
    }
