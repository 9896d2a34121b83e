"""One workflow per thing complained about (a SKU, a category or a queue): crisis detection.

Triage signals it (signal-with-start) with each complaint about its key. It
counts them in a sliding window; when the rules' threshold is reached within
the window it declares a crisis: the crisis team is told, and every linked
complaint (those in the window, and any that follow while it lasts) is raised
to the rules' severity and re-timed. A supervisor may then propose one common
remedy; once an eligible approver signs it (or a proposer whose authority covers
it signs the proposal), each linked case receives the remedy with that signature,
verifies it itself against the live approver directory and its own rules, and
carries it out through its own payment path: approved once, paid once per case.

History stays bounded: it ends once a quiet window passes with no complaint
(and no remedy pending), and continues as new when Temporal suggests it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from workflows.handover import continue_as_new_if_suggested, ended_on_bad_state
from workflows.policies import ACTIVITY_TIMEOUT, PATIENT_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from activities.io import AuthorityCheck, ProposalCheck, StaffNotice
    from activities.rules.schema import Template
    from redress.contract import (
        CRISIS_WORKFLOW_TYPE,
        ApprovalDecision,
        ProposalStatus,
        RemedyProposal,
        workflow_id_for,
    )
    from redress.crises import CommonProposal, ComplaintReported, CrisisLink, CrisisRules, CrisisState, Sighting
    from workflows import approvals
    from workflows.approvals import Claim
    from workflows.messages import problems, receives, refusal, takes
    from workflows.steps import Steps


@workflow.defn(name=CRISIS_WORKFLOW_TYPE)
class CrisisWatch:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._state, self._refused = problems(CrisisState, raw, root="input")
        self._to_link: list[str] = []
        self._replan = False
        self._proposal_asked = False
        self._steps = Steps()

    @property
    def state(self) -> CrisisState:
        """The state; one that refused its input has none, and refuses every message."""
        if self._state is None:
            raise refusal("this crisis watch refused its input and is ending")
        return self._state

    @property
    def rules(self) -> CrisisRules:
        """The rules' crisis settings, as the first complaint that reported in saw them."""
        if self.state.rules is None:
            raise refusal(f"no complaint has reported to {self.state.key} yet")
        return self.state.rules

    @workflow.run
    async def run(self, raw: Any) -> CrisisState:
        if self._state is None:  # junk input: the run ends at once, failing with the reason
            self._steps.close("this crisis watch refused its input and is ending")
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise refusal("; ".join(self._refused))
        return await ended_on_bad_state(self._live())

    async def _live(self) -> CrisisState:
        steps = asyncio.create_task(self._steps.run())
        while True:
            self._replan = False
            quiet_until = self._quiet_until()
            over = quiet_until is not None and quiet_until <= workflow.now()
            held = bool(self._pending() or self._steps)  # a remedy awaiting its decision, or a step under way
            # Over and not held: straight on to ending the watch. Over but held: wait for what holds it,
            # without a timeout (one already over returns at once, and the loop would spin without yielding).
            if not over or held:
                await self._wait_for_work(None if over else quiet_until)
            if self._team_to_tell():
                await self._notify_team()
                continue
            if self._to_link:
                await self._link(self._to_link[0])
                continue
            due = self._remedy_to_send()
            if due is not None:
                await self._send_remedy(*due)
                continue
            await continue_as_new_if_suggested(self.state)
            quiet = self._quiet_until()
            if quiet and quiet <= workflow.now() and not self._pending() and not self._steps:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._to_link and not self._steps and self._remedy_to_send() is None:
                    steps.cancel()
                    return self.state

    async def _wait_for_work(self, quiet_until: datetime | None) -> None:
        """Until there is something to do, or the quiet window (if still ahead) ends."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: (
                    self._replan
                    or bool(self._to_link)
                    or self._team_to_tell()
                    or self._remedy_to_send() is not None
                    or workflow.info().is_continue_as_new_suggested()
                ),
                timeout=quiet_until - workflow.now() if quiet_until else None,
                timeout_summary="a quiet window ends the watch",
            )

    def _quiet_until(self) -> datetime | None:
        state = self.state
        if state.last_seen is None or state.rules is None:
            return None
        return state.last_seen + timedelta(seconds=state.rules.window_seconds)

    def _pending(self) -> CommonProposal | None:
        return next((p for p in self.state.proposals if p.status == ProposalStatus.awaiting_approval), None)

    def _team_to_tell(self) -> bool:
        return self.state.declared_at is not None and not self.state.team_told

    def _remedy_to_send(self) -> tuple[str, CommonProposal] | None:
        """An approved remedy not yet sent to a case already told of the crisis (one signal at a time)."""
        for proposal in self.state.proposals:
            if proposal.status != ProposalStatus.approved:
                continue
            for complaint_id in self.state.linked:
                if complaint_id not in self._to_link and complaint_id not in proposal.applied_to:
                    return complaint_id, proposal
        return None

    async def _link(self, complaint_id: str) -> None:
        rules = self.rules
        await workflow.get_external_workflow_handle(workflow_id_for(complaint_id)).signal(
            "crisis_declared",
            CrisisLink(
                crisis_id=self.state.key,
                raise_to=rules.raise_to,
                reason=f"crisis {self.state.key}: {len(self.state.linked)} complaints",
            ),
        )
        self._to_link.remove(complaint_id)  # told: approved remedies follow (`_remedy_to_send`)

    async def _send_remedy(self, complaint_id: str, proposal: CommonProposal) -> None:
        proposal.applied_to.append(complaint_id)
        await workflow.get_external_workflow_handle(workflow_id_for(complaint_id)).signal(
            "crisis_remedy", proposal.remedy(self.state.key)
        )

    # ------------------------------------------------------------ counting

    @workflow.signal
    @receives(ComplaintReported)
    def complaint_reported(self, reported: ComplaintReported) -> None:
        self._require_state()
        state = self.state
        state.rules = reported.rules
        window = timedelta(seconds=reported.rules.window_seconds)
        if reported.complaint_id in state.linked or any(s.complaint_id == reported.complaint_id for s in state.recent):
            return  # a retried triage reports twice
        state.recent = [s for s in state.recent if s.at > reported.at - window]
        state.recent.append(Sighting(complaint_id=reported.complaint_id, at=reported.at))
        state.last_seen = max(state.last_seen or reported.at, reported.at)
        self._replan = True
        if state.declared_at is not None:
            self._add_link(reported.complaint_id)
        elif len(state.recent) >= reported.rules.threshold:
            state.declared_at = workflow.now()
            workflow.logger.info("crisis declared", extra={"crisis": state.key, "complaints": len(state.recent)})
            for sighting in state.recent:
                self._add_link(sighting.complaint_id)

    def _signal_refused(self, name: str, reason: str) -> None:
        """A signal cannot be refused to its sender: log that it was ignored (the reason names fields only)."""
        workflow.logger.warning(f"{name} signal ignored", extra={"reason": reason})

    def _require_state(self) -> None:
        if self._state is None:
            raise refusal("this crisis watch refused its input and is ending")

    def _add_link(self, complaint_id: str) -> None:
        if complaint_id not in self.state.linked:
            self.state.linked.append(complaint_id)
            self._to_link.append(complaint_id)

    async def _notify_team(self) -> None:
        self.state.team_told = True
        rules = self.rules
        notice = StaffNotice(
            complaint_id=self.state.linked[0] if self.state.linked else self.state.key,
            key=f"crisis:{self.state.key}:declared",
            template=Template.crisis_declared,
            role=rules.notify,
            rule_version=rules.rule_version,
            params={
                "crisis": self.state.key,
                "count": str(len(self.state.linked)),
                "window": str(timedelta(seconds=rules.window_seconds)),
            },
        )
        await workflow.execute_activity_method(
            ComplaintActivities.notify_staff,
            notice,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=PATIENT_RETRY,
        )

    # ------------------------------------------------------------ the common remedy

    @workflow.update
    @takes(RemedyProposal)
    async def propose_common_remedy(self, proposal: RemedyProposal) -> dict:
        """One remedy for every linked case; the rules say who must approve it."""
        self._proposal_asked = True
        try:
            record = await self._steps.ask(lambda: self._propose(proposal))
        finally:
            self._proposal_asked = False
        return record.public()

    @propose_common_remedy.validator
    @takes(RemedyProposal)
    def _check_propose(self, proposal: RemedyProposal) -> None:
        if self._proposal_asked:
            raise refusal("another common remedy is being checked; try again in a moment")
        self._proposal_admissible(proposal)

    def _proposal_admissible(self, proposal: RemedyProposal) -> Claim | None:
        self._require_state()
        if self.state.declared_at is None or self.state.rules is None:
            raise refusal(f"no crisis is declared for {self.state.key}")
        if self._pending():
            raise refusal("a common remedy already awaits approval")
        if proposal.signature is None and proposal.passkey is None and proposal.signed_at is None:
            return None
        claim = approvals.claim(
            self.state.key,
            self._next_id(),
            "propose",
            proposal.amount,
            proposal.currency,
            proposal.proposed_by,
            proposal.signed_at,
            proposal.signature,
            workflow.now(),
            kind=proposal.kind,
            crisis=True,
            passkey=proposal.passkey,
        )
        approvals.admissible(claim, workflow.now(), set(self.state.used_signatures))
        return claim

    def _next_id(self) -> str:
        return f"C{len(self.state.proposals) + 1}"

    async def _propose(self, proposal: RemedyProposal) -> CommonProposal:
        signed = self._proposal_admissible(proposal) is not None
        verdict = await workflow.execute_activity_method(
            ComplaintActivities.check_proposal,
            ProposalCheck(
                complaint_id=self.state.key,
                rule_version=self.rules.rule_version,
                kind=proposal.kind,
                amount=proposal.amount,
                currency=proposal.currency,
                proposed_by=proposal.proposed_by,
                at=workflow.now(),
                signed=signed,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=PATIENT_RETRY,
        )
        claim = self._proposal_admissible(proposal)
        record = CommonProposal(
            proposal_id=self._next_id(),
            kind=proposal.kind,
            amount=proposal.amount,
            currency=proposal.currency,
            reason=proposal.reason,
            proposed_by=proposal.proposed_by,
            required_role=verdict.required_role,
            eligible_approvers=verdict.eligible_approvers,
            rule_version=self.rules.rule_version,
            proposed_at=workflow.now(),
        )
        if not verdict.needs_approval:
            record.status, record.decided_by = ProposalStatus.approved, "rules: no approval needed"
            record.decided_at = workflow.now()
        elif claim is not None and verdict.proposer is not None:
            fingerprint = approvals.admissible(claim, workflow.now(), set(self.state.used_signatures))
            approvals.proven(claim, verdict.proposer)
            if verdict.proposer.covers:
                self.state.used_signatures.append(fingerprint)
                record.status, record.decided_by, record.decision = (
                    ProposalStatus.approved,
                    proposal.proposed_by,
                    "propose",
                )
                record.decided_at, record.proposer_verified = workflow.now(), True
                record.signed_at, record.signature = proposal.signed_at, proposal.signature
                record.passkey = proposal.passkey
            elif not verdict.allowed:
                raise refusal(verdict.reason)
        elif not verdict.allowed:
            raise refusal(verdict.reason)
        self.state.proposals.append(record)
        self._replan = True
        return record

    @workflow.update
    @takes(ApprovalDecision)
    async def approve_common_remedy(self, decision: ApprovalDecision) -> dict:
        record = await self._steps.ask(lambda: self._approve(decision))
        told = [c for c in self.state.linked if c not in self._to_link]
        await workflow.wait_condition(lambda: all(c in record.applied_to for c in told))  # sent by the main loop
        return record.public()

    @approve_common_remedy.validator
    @takes(ApprovalDecision)
    def _check_approve(self, decision: ApprovalDecision) -> None:
        self._decision_admissible(decision)

    def _decision_admissible(self, decision: ApprovalDecision) -> tuple[CommonProposal, Claim, str]:
        self._require_state()
        record = self._pending()
        if record is None:
            raise refusal("no common remedy awaits approval")
        approvals.current(decision, record.proposal_id, record.proposed_by)
        claim = approvals.claim(
            self.state.key,
            record.proposal_id,
            "approve",
            record.amount,
            record.currency,
            decision.approver,
            decision.signed_at,
            decision.signature,
            workflow.now(),
            kind=record.kind,
            crisis=True,
            passkey=decision.passkey,
        )
        fingerprint = approvals.admissible(claim, workflow.now(), set(self.state.used_signatures))
        return record, claim, fingerprint

    async def _approve(self, decision: ApprovalDecision) -> CommonProposal:
        record, _, _ = self._decision_admissible(decision)
        authority = await workflow.execute_activity_method(
            ComplaintActivities.authority,
            AuthorityCheck(
                complaint_id=self.state.key,
                rule_version=self.rules.rule_version,
                person=decision.approver,
                kind=record.kind,
                amount=record.amount,
                currency=record.currency,
                at=workflow.now(),
                at_least=record.required_role,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=PATIENT_RETRY,
        )
        record, claim, fingerprint = self._decision_admissible(decision)
        approvals.proven(claim, authority)
        approvals.entitled(
            authority, record.proposal_id, record.required_role, record.amount, record.currency, "approve"
        )
        self.state.used_signatures.append(fingerprint)
        record.status, record.decided_by = ProposalStatus.approved, decision.approver
        record.decided_at = workflow.now()
        record.signed_at, record.signature = decision.signed_at, decision.signature
        record.passkey = decision.passkey
        self._replan = True
        return record

    @workflow.query
    def crisis(self) -> dict:
        state = self.state
        return {
            "key": state.key,
            "declared_at": state.declared_at.isoformat() if state.declared_at else None,
            "recent": len(state.recent),
            "linked": list(state.linked),
            "threshold": state.rules.threshold if state.rules else None,
            "proposals": [p.public() for p in state.proposals],
        }
