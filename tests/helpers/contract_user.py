"""A workflow another team might write with Redress's contract: it starts cases as child workflows.

Imported afresh by the default workflow sandbox, with no passthrough settings of
ours: the contract must load there (tests/test_package.py).
"""

from __future__ import annotations

from temporalio import workflow

from redress import search_attributes
from redress.contract import TASK_QUEUE, WORKFLOW_TYPE, ComplaintInput, workflow_id_for


@workflow.defn(name="ContractUser")
class ContractUser:
    @workflow.run
    async def run(self, complaint: ComplaintInput) -> str:
        await workflow.start_child_workflow(
            WORKFLOW_TYPE, complaint, id=workflow_id_for(complaint.complaint_id), task_queue=TASK_QUEUE
        )
        return search_attributes.COMPLAINT_STATUS.name
