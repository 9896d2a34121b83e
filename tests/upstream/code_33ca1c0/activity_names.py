# Frozen: the activity names and types of activities/complaint_activities.py as of commit 33ca1c0.
# The replayer needs only their names and types, never their bodies.
from __future__ import annotations

from temporalio import activity

from tests.upstream.code_33ca1c0.io import *  # noqa: F403 - the activities' types
from tests.upstream.code_33ca1c0.customer import CareOrder  # noqa: F401


class ComplaintActivities:
    @activity.defn
    async def triage(self, facts: TriageFacts) -> TriageResult:
        raise NotImplementedError

    @activity.defn
    async def record_case_end(self, end: CaseEnd) -> None:
        raise NotImplementedError

    @activity.defn
    async def send_care_package(self, order: CareOrder) -> str:
        raise NotImplementedError

    @activity.defn
    async def compute_deadlines(self, request: DeadlineRequest) -> DeadlineAnswer:
        raise NotImplementedError

    @activity.defn
    async def shift_for_pause(self, shift: PauseShift) -> ShiftedDeadlines:
        raise NotImplementedError

    @activity.defn
    async def check_proposal(self, check: ProposalCheck) -> ProposalVerdict:
        raise NotImplementedError

    @activity.defn
    async def notify_customer(self, notice: CustomerNotice) -> str:
        raise NotImplementedError

    @activity.defn
    async def notify_staff(self, notice: StaffNotice) -> str:
        raise NotImplementedError

    @activity.defn
    async def execute_remedy(self, order: RemedyOrder) -> RemedyReceipt:
        raise NotImplementedError
