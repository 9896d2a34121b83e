"""A case's remedies: proposals, the approval path, and payouts.

Money moves only through `record` and `execute`. A proposal is approved at once
for free kinds and amounts within the rules' automatic limit (counted over the
whole case), for a proposer whose verified signature and authority cover it, for
the rules' own escalation payouts, and for a crisis' common remedy that this case
verifies itself; otherwise it awaits an approver's verified signature
(workflows/approvals.py). An approver who does not decide in time is escalated
past, or the rules' fallback applies.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from activities.io import (
        Authority,
        AuthorityCheck,
        PlannedPayout,
        ProposalCase,
        ProposalCheck,
        ProposalVerdict,
        RemedyOrder,
    )
    from activities.rules.schema import Template
    from redress import signatures
    from redress.contract import (
        MONEY_KINDS,
        ApprovalDecision,
        ApprovalSeat,
        GroupApproval,
        ProposalRecord,
        ProposalStatus,
        RemedyKind,
        RemedyProposal,
        Stage,
    )
    from redress.crises import CommonRemedy
    from workflows import approvals
    from workflows.approvals import Claim
    from workflows.case_state import CaseState
    from workflows.messages import refusal
    from workflows.notices import Notices
    from workflows.steps import StepRefused, StepRunner

# A proposal cannot be made while the case is in these stages.
NOT_NOW = (Stage.received, Stage.resolved, Stage.follow_up, Stage.pending_customer)


def _terms(proposal: ProposalRecord) -> dict[str, Any]:
    """What the rules are asked about a recorded proposal: its kind, amount, currency and proposer."""
    return {
        "kind": proposal.kind,
        "amount": proposal.amount,
        "currency": proposal.currency,
        "proposed_by": proposal.proposed_by,
    }


class Remedies:
    def __init__(self, case: CaseState, run: StepRunner, notices: Notices) -> None:
        self.case = case
        self.run = run
        self.notices = notices

    async def _rules_on(self, **remedy: Any) -> ProposalVerdict:
        """What the case's own rules say of a remedy now: whether it needs approval, whose, whether it is allowed."""
        case = self.case
        check = ProposalCheck(
            complaint_id=case.id,
            rule_version=case.rule_version,
            at=workflow.now(),
            granted_before=case.granted(remedy["kind"], remedy["currency"]),
            **remedy,
        )
        verdict: ProposalVerdict = await self.run(ComplaintActivities.check_proposal, check)
        return verdict

    async def _authority(
        self,
        person: str,
        kind: RemedyKind,
        amount: Decimal,
        currency: str,
        at_least: str | None = None,
        seats: list[ApprovalSeat] | None = None,
    ) -> Authority:
        """What the live directory says `person` may grant on this case now, against its pinned limits
        (and, for an approver group's proposal, which of its `seats` they may fill)."""
        case = self.case
        check = AuthorityCheck(
            complaint_id=case.id,
            rule_version=case.rule_version,
            person=person,
            kind=kind,
            amount=amount,
            currency=currency,
            at=workflow.now(),
            at_least=at_least,
            seats=seats or [],
            granted_before=case.granted(kind, currency),
        )
        authority: Authority = await self.run(ComplaintActivities.authority, check)
        return authority

    def _proposal_case(self) -> ProposalCase:
        """The case as the rules judge an agent's proposal on it: evidence_required, and whether its customer is
        flagged for review (then no automatic limit)."""
        case = self.case
        return ProposalCase(
            category=case.category or "",
            severity=case.tier,
            queue=case.queue or "",
            tags=case.tags(),
            flagged=case.claimant_flag(),
        )

    # ------------------------------------------------------------ proposals

    def proposal_admissible(self, proposal: RemedyProposal) -> Claim | None:
        """Whether the case can take this proposal now; the proposer's claim if it is signed."""
        case = self.case
        case.refuse_unless_open()
        if case.stage in NOT_NOW:
            raise refusal(f"a remedy cannot be proposed while the case is {case.stage.value}")
        if case.withdrawal or case.resolution:
            raise refusal("the case is being resolved or withdrawn")
        held = case.held_proposal()
        if held is not None:
            raise refusal(f"proposal {held.proposal_id} waits for evidence ({held.held_because}); add it first")
        busy = case.pending_approval() or (case.proposal(case.executing) if case.executing else None)
        if busy or case.to_execute:
            which = busy.proposal_id if busy else case.to_execute[0]
            raise refusal(f"proposal {which} is still open; it must be decided and carried out first")
        if proposal.kind in MONEY_KINDS and proposal.amount <= 0:
            raise refusal(f"amount: a {proposal.kind.value} needs an amount above zero")
        if proposal.signature is None and proposal.passkey is None and proposal.signed_at is None:
            return None
        claim = approvals.claim(
            case.id,
            case.next_proposal_id(),
            "propose",
            proposal.amount,
            proposal.currency,
            proposal.proposed_by,
            proposal.signed_at,
            proposal.signature,
            workflow.now(),
            kind=proposal.kind,
            passkey=proposal.passkey,
        )
        approvals.admissible(claim, workflow.now(), case.used_signatures)
        return claim

    async def propose(self, proposal: RemedyProposal) -> ProposalRecord:
        """The step behind propose_remedy: the rules say who must approve; a proven proposer may grant it."""
        case = self.case
        signed = self.proposal_admissible(proposal) is not None
        verdict = await self._rules_on(
            kind=proposal.kind,
            amount=proposal.amount,
            currency=proposal.currency,
            proposed_by=proposal.proposed_by,
            signed=signed,
            auto_used=case.auto_used(proposal.currency),
            case=self._proposal_case(),
        )
        claim = self.proposal_admissible(proposal)  # the case may have moved on while the rules were read
        actor = f"agent:{proposal.proposed_by}"
        if not verdict.needs_approval:
            record = self.record(proposal, verdict, actor, verdict.reason, automatic=True)
            record.within_auto_limit = verdict.within_auto_limit
            return record
        if claim is not None and verdict.proposer is not None:
            fingerprint = approvals.admissible(claim, workflow.now(), case.used_signatures)
            approvals.proven(claim, verdict.proposer)
            case.used_signatures.add(fingerprint)
            if verdict.proposer.covers and not verdict.flagged and verdict.group is None:
                return self.record(
                    proposal,
                    verdict,
                    actor,
                    approved_by=proposal.proposed_by,
                    verified=True,
                    reason=f"within the verified authority of {proposal.proposed_by} "
                    f"({approvals.acting(verdict.proposer)})",
                )
        if not verdict.allowed:
            raise refusal(verdict.reason)
        if claim is None:
            return self.record(
                proposal, verdict, actor, f"{verdict.reason}; unsigned, so the proposer's name is only a claim"
            )
        return self.record(proposal, verdict, actor, verdict.reason, verified=True)

    async def pay_on_breach(self, name: str, payout: PlannedPayout) -> None:
        """A rule's guarantee ("miss the deadline, we pay"): fired once with its step, paid through the usual path."""
        case = self.case
        case.refuse_unless_open()
        proposal = RemedyProposal(
            kind=payout.kind,
            amount=payout.amount,
            currency=payout.currency,
            reason=payout.reason,
            proposed_by=f"rules:{name}",
        )
        if payout.needs_approval:
            verdict = await self._rules_on(
                kind=payout.kind, amount=payout.amount, currency=payout.currency, proposed_by=proposal.proposed_by
            )
            if verdict.needs_approval and not verdict.allowed:
                case.event("payout_refused", "rules", f"automatic payout for {name}: {verdict.reason}")
                return
            automatic, reason = not verdict.needs_approval, verdict.reason
        else:
            verdict = ProposalVerdict(allowed=True, needs_approval=False, reason="")
            automatic, reason = True, f"automatic: the {name} deadline was missed"
        if not case.stage.is_final and not case.withdrawal:
            self.record(proposal, verdict, f"rules:{name}", reason, automatic=automatic)

    def record(
        self,
        proposal: RemedyProposal,
        verdict: ProposalVerdict,
        actor: str,
        reason: str,
        approved_by: str | None = None,
        automatic: bool = False,
        verified: bool = False,
    ) -> ProposalRecord:
        """The one path every remedy takes, an agent's, a rule's or a crisis': approval, or straight to execution.

        Approved at once only when `automatic` (free, within the rules' automatic limit, or a rule's
        own payout) or `approved_by` names a signer whose signature was verified; else it awaits approval.
        A proposal the rules want evidence for (`verdict.evidence_kinds`: only an agent's proposal is asked
        about evidence) waits, approved or not, until evidence of a kind they name is on the case
        (`release`). Whether it is there is read now, not when the rules were asked: evidence added
        meanwhile counts.
        """
        case = self.case
        proposal_id = case.next_proposal_id()
        approved = automatic or approved_by is not None
        held = bool(verdict.evidence_kinds) and case.evidence_of(verdict.evidence_kinds) is None
        status = ProposalStatus.approved if approved else ProposalStatus.awaiting_approval
        record = ProposalRecord(
            proposal_id=proposal_id,
            kind=proposal.kind,
            amount=proposal.amount,
            currency=proposal.currency,
            reason=proposal.reason,
            proposed_by=proposal.proposed_by,
            rule_version=case.rule_version,
            status=ProposalStatus.awaiting_evidence if held else status,
            required_role=None if approved else verdict.required_role,
            eligible_approvers=[] if approved else verdict.eligible_approvers,
            group=None if approved else verdict.group,
            decided_by=approved_by or (actor if automatic and actor.startswith("rules:") else None),
            decided_at=workflow.now() if approved else None,
            proposed_at=workflow.now(),
            proposer_verified=verified,
            evidence_needed=verdict.evidence_kinds if held else [],
            held_because=verdict.evidence_reason if held else None,
        )
        case.proposals.append(record)
        case.event(
            "remedy_proposed",
            actor,
            f"{proposal_id}: {proposal.kind.value} {proposal.amount} {proposal.currency}; {reason}",
            proposal_id=proposal_id,
            rule_version=case.rule_version,
            signed=verified,
        )
        if held:  # approved or not, it waits: `decided_at` says whether it was approved when proposed
            case.event(
                "remedy_held",
                "rules",
                f"{proposal_id} waits for evidence: {verdict.evidence_reason}",
                proposal_id=proposal_id,
                evidence=[kind.value for kind in verdict.evidence_kinds],
            )
            return record
        self._go_on(record, verdict.decision_timeout_seconds)
        return record

    def _go_on(self, record: ProposalRecord, decision_timeout_seconds: float | None) -> None:
        """An approved proposal is queued to be carried out; one awaiting approval asks its approvers
        (an approver group's: every seat's role, each seat on its own clock)."""
        case = self.case
        if record.status == ProposalStatus.approved:
            case.to_execute.append(record.proposal_id)
        elif record.group is not None:
            for seat in record.group.seats:
                if decision_timeout_seconds:
                    seat.due = workflow.now() + timedelta(seconds=decision_timeout_seconds)
                self._ask(record, seat.role)
            self._group_due(record)
        else:
            if decision_timeout_seconds and case.pending_approval() is record:
                case.approval_due = workflow.now() + timedelta(seconds=decision_timeout_seconds)
            self._ask(record, record.required_role or "")
        case.set_stage(Stage.awaiting_approval if case.pending_approval() else Stage.remedy_proposed)

    def _ask(self, record: ProposalRecord, role: str) -> None:
        self.notices.tell_staff(Template.approval_needed, role, proposal=record, reason=record.reason, role=role)

    def _group_due(self, record: ProposalRecord) -> None:
        """A group's proposal: the deadline watcher wakes for the open seat that falls due first; the
        eligible approvers are those who could fill an open seat and have not signed."""
        group = record.group
        assert group is not None
        open_seats = [seat for seat in group.seats if seat.open()]
        signed = set(group.signers())
        record.eligible_approvers = sorted({n for seat in open_seats for n in seat.eligible if n not in signed})
        dues = [seat.due for seat in open_seats if seat.due is not None]
        if self.case.pending_approval() is record:
            self.case.approval_due = min(dues) if dues else None

    # ------------------------------------------------------------ evidence

    async def release(self) -> None:
        """The step after evidence is added: a held proposal whose evidence is now on the case goes on.

        One approved when it was proposed (automatically, or by its signed proposer's own
        authority) is carried out now; any other asks the rules again (the approvers of the
        live directory, the level's timeout) and awaits approval from now.
        """
        case = self.case
        held = case.held_proposal()
        evidence = case.evidence_of(held.evidence_needed) if held else None
        if held is None or evidence is None:
            return
        if held.decided_at is not None and await self._approval_stands(held):
            if case.held_proposal() is not held:
                return  # the case was resolved or withdrawn while the directory was read: it lapsed
            held.status = ProposalStatus.approved
            self._released(held, evidence.evidence_id, "approved when proposed: carried out now")
            self._go_on(held, None)
            return
        verdict = await self._rules_on(
            **_terms(held), auto_used=case.auto_used(held.currency), case=self._proposal_case()
        )
        if case.held_proposal() is not held:
            return  # the case was resolved or withdrawn while the rules were read: it lapsed
        if not verdict.needs_approval:
            held.status, held.decided_by, held.decided_at = ProposalStatus.approved, None, workflow.now()
            held.within_auto_limit = verdict.within_auto_limit
            self._released(held, evidence.evidence_id, verdict.reason)
        elif not verdict.allowed:
            held.status, held.decided_by, held.decided_at = ProposalStatus.rejected, "rules", workflow.now()
            self._released(held, evidence.evidence_id, f"rejected: {verdict.reason}")
            return
        else:
            held.status = ProposalStatus.awaiting_approval
            held.required_role, held.eligible_approvers = verdict.required_role, verdict.eligible_approvers
            held.group = verdict.group
            self._released(held, evidence.evidence_id, f"to approval: {verdict.reason}")
        self._go_on(held, verdict.decision_timeout_seconds)

    async def _approval_stands(self, held: ProposalRecord) -> bool:
        """Whether the approval a held proposal got when proposed still holds now that it would be paid.

        Within the automatic limit it does (the case's pinned rules). A signer's own authority is asked of
        the live directory again: a hold can last days, and a key revoked or a role lost meanwhile must not
        pay. If it no longer covers the amount, the proposal goes to approval like any other.
        """
        case = self.case
        if not held.proposer_verified or held.decided_by is None:
            return True
        authority = await self._authority(held.decided_by, held.kind, held.amount, held.currency)
        can_sign = authority.public_key is not None or bool(authority.passkeys)
        stands = authority.covers and can_sign and authority.unavailable is None
        if not stands:
            held.decided_by, held.decided_at = None, None
            case.event(
                "remedy_approval_lapsed",
                "rules",
                f"{held.proposal_id}: {authority.person}'s authority no longer covers it (key revoked or role "
                "changed while it waited for evidence); it goes to approval",
                proposal_id=held.proposal_id,
            )
        return stands

    def _released(self, proposal: ProposalRecord, evidence_id: str, what: str) -> None:
        self.case.event(
            "remedy_released",
            "rules",
            f"{proposal.proposal_id}: evidence {evidence_id} is on the case; {what}",
            proposal_id=proposal.proposal_id,
            evidence_id=evidence_id,
        )

    def lapse_held(self, why: str) -> None:
        """The case is resolved or withdrawn while a proposal waits for evidence: it lapses, never paid."""
        held = self.case.held_proposal()
        if held is None:
            return
        held.status, held.decided_at = ProposalStatus.lapsed, workflow.now()
        self.case.event(
            "remedy_lapsed",
            "system",
            f"{held.proposal_id} lapsed: the case was {why} before the evidence it waited for came",
            proposal_id=held.proposal_id,
        )

    # ------------------------------------------------------------ decisions

    def decision_admissible(self, decision: ApprovalDecision, verb: str) -> tuple[ProposalRecord, Claim, str]:
        """What can be checked without the directory: a pending proposal, four eyes, a fresh unused signature."""
        case = self.case
        case.refuse_unless_open()
        if approvals.fingerprint_of(decision) in case.used_signatures:
            raise refusal("replayed: this signature was already used")
        pending = case.pending_approval()
        if pending is None:
            raise refusal(f"no remedy awaits approval (the case is {case.stage.value})")
        approvals.current(decision, pending.proposal_id, pending.proposed_by)
        if pending.group is not None and decision.approver in pending.group.authorities():
            raise refusal(
                f"four eyes: {decision.approver}'s authority already signed {pending.proposal_id} (they, or someone "
                f"standing in for them); it waits for someone else ({pending.group.waiting_for()})"
            )
        claim = approvals.claim(
            case.id,
            pending.proposal_id,
            verb,
            pending.amount,
            pending.currency,
            decision.approver,
            decision.signed_at,
            decision.signature,
            workflow.now(),
            passkey=decision.passkey,
        )
        fingerprint = approvals.admissible(claim, workflow.now(), case.used_signatures)
        return pending, claim, fingerprint

    async def decide(self, decision: ApprovalDecision, verb: str) -> ProposalRecord:
        """The step behind a decision: the live directory's key for the approver must verify it, at their level."""
        case = self.case
        pending, claim, _ = self.decision_admissible(decision, verb)
        group = pending.group
        asked = [(seat.role, seat.countersign) for seat in group.seats] if group else []
        authority = await self._authority(
            decision.approver,
            pending.kind,
            pending.amount,
            pending.currency,
            at_least=pending.required_role,
            seats=group.seats if group else None,
        )
        pending, claim, fingerprint = self.decision_admissible(decision, verb)  # decided or timed out meanwhile?
        approvals.proven(claim, authority)
        approvals.not_standing_in_for(authority, pending)
        if pending.group is not None:
            if [(seat.role, seat.countersign) for seat in pending.group.seats] != asked:  # a seat climbed meanwhile
                raise refusal(f"{pending.proposal_id} changed while your decision was checked; decide again")
            return self._seat_decided(pending, pending.group, decision, verb, authority, fingerprint)
        approvals.entitled(
            authority, pending.proposal_id, pending.required_role, pending.amount, pending.currency, "decide"
        )
        case.used_signatures.add(fingerprint)
        self._decided(pending, decision, verb, authority)
        return pending

    def _decided(self, pending: ProposalRecord, decision: ApprovalDecision, verb: str, authority: Authority) -> None:
        """A verified decision ends the wait: approved (carried out next) or rejected (back to the agent)."""
        case = self.case
        pending.status = ProposalStatus.approved if verb == "approve" else ProposalStatus.rejected
        pending.decided_by = decision.approver
        pending.decided_at = workflow.now()
        case.approval_due = None
        note = f": {decision.note}" if decision.note else ""
        group = pending.group
        what = f" by approver group {group.name} ({', '.join(group.signers())})" if group and verb == "approve" else ""
        if verb == "approve":
            case.to_execute.append(pending.proposal_id)
            case.set_stage(Stage.remedy_proposed)
        else:
            case.set_stage(Stage.in_progress)
        self._verified_event(
            "remedy_approved" if verb == "approve" else "remedy_rejected",
            decision,
            authority,
            f"{pending.proposal_id} {'approved' if verb == 'approve' else 'rejected'}{what}{note}",
            proposal_id=pending.proposal_id,
            rule_version=case.rule_version,
        )

    def _verified_event(
        self, kind: str, decision: ApprovalDecision, authority: Authority, detail: str, **data: Any
    ) -> None:
        """A verified signer's decision in the timeline: who, in what standing, proven by key or passkey."""
        self.case.event(
            kind,
            f"approver:{decision.approver}",
            detail,
            **data,
            verified=True,
            role=approvals.acting(authority),
            proof="passkey" if decision.passkey else "key",
        )

    def _seat_decided(
        self,
        pending: ProposalRecord,
        group: GroupApproval,
        decision: ApprovalDecision,
        verb: str,
        authority: Authority,
        fingerprint: str,
    ) -> ProposalRecord:
        """A verified decision on an approver group's proposal, by someone who may fill one of its open seats.

        A rejection ends it. An approval fills the most demanding open seat they fit; the last seat
        filled approves it.
        """
        case = self.case
        if authority.acting_for is not None and authority.acting_for in group.authorities():
            raise refusal(
                f"four eyes: {decision.approver} stands in for {authority.acting_for}, whose authority already "
                f"signed {pending.proposal_id}; it waits for someone else ({group.waiting_for()})"
            )
        seat = next((group.seats[i] for i in authority.fits if group.seats[i].open()), None)
        if seat is None:
            standing = approvals.acting(authority) if authority.role else "no role in the directory"
            raise refusal(
                f"{decision.approver} ({standing}) may fill no open seat of {pending.proposal_id}: "
                f"it waits for {group.waiting_for()}"
            )
        case.used_signatures.add(fingerprint)
        if verb == "approve":
            seat.approved_by.append(decision.approver)
            if authority.acting_for:
                group.acting_for[decision.approver] = authority.acting_for
        if verb == "reject" or group.complete():
            self._decided(pending, decision, verb, authority)
            return pending
        self._group_due(pending)
        note = f": {decision.note}" if decision.note else ""
        self._verified_event(
            "remedy_signed",
            decision,
            authority,
            f"{pending.proposal_id}: approved for the {seat.role} seat of group {group.name}{note}; "
            f"it waits for {group.waiting_for()}",
            proposal_id=pending.proposal_id,
            seat=seat.role,
        )
        return pending

    async def approval_timed_out(self) -> None:
        """Nobody at the level asked decided in time: ask the next level, or apply the rules' fallback."""
        case = self.case
        pending = case.pending_approval()
        if pending is None:
            return
        if pending.group is not None:
            await self._seats_timed_out(pending, pending.group)
            return
        verdict = await self._rules_on(**_terms(pending), above_role=pending.required_role)
        if pending.status != ProposalStatus.awaiting_approval:
            return  # decided while the rules were consulted
        if verdict.allowed:
            pending.required_role = verdict.required_role
            pending.eligible_approvers = verdict.eligible_approvers
            if verdict.decision_timeout_seconds:
                case.approval_due = workflow.now() + timedelta(seconds=verdict.decision_timeout_seconds)
            case.event(
                "approval_escalated",
                "rules",
                f"{pending.proposal_id}: {verdict.reason}",
                proposal_id=pending.proposal_id,
                required_role=verdict.required_role,
            )
            role = verdict.required_role or ""
            self.notices.tell_staff(Template.approval_needed, role, proposal=pending, reason=pending.reason, role=role)
            return
        action, cap = verdict.fallback, verdict.fallback_cap
        pending.decided_by = "rules:approval-timeout"
        pending.decided_at = workflow.now()
        # a flagged customer's remedy needs someone's decision: the fallback approves nothing for them
        if action == "approve" and cap is not None and pending.amount <= cap and not case.claimant_flag():
            pending.status = ProposalStatus.approved
            case.to_execute.append(pending.proposal_id)
            case.set_stage(Stage.remedy_proposed)
            case.event(
                "remedy_approved",
                "rules",
                f"{pending.proposal_id} approved by the fallback: "
                f"no decision in time, within the cap of {cap} {pending.currency}",
                proposal_id=pending.proposal_id,
                rule_version=case.rule_version,
            )
            return
        self._rejected_in_time(pending, "rejected by the fallback: no decision in time")

    async def _seats_timed_out(self, pending: ProposalRecord, group: GroupApproval) -> None:
        """An approver group's open seats that fell due: a ranked seat climbs to the next level that has enough
        people who have not signed; a countersign seat, or a ranked one with no level left, ends the proposal
        rejected: a group's approval is never granted by a timeout."""
        case = self.case
        due = [seat for seat in group.seats if seat.open() and seat.due is not None and seat.due <= workflow.now()]
        for seat in due:
            if not seat.open():
                continue  # filled while the rules were read for an earlier seat
            if seat.countersign:
                self._rejected_in_time(
                    pending,
                    f"rejected: no {seat.role} signed in time, and an approver group is never approved by a timeout",
                )
                return
            verdict = await self._rules_on(
                **_terms(pending),
                above_role=seat.role,
                exclude=group.signers(),
                need=seat.count - len(seat.approved_by),
            )
            if pending.status != ProposalStatus.awaiting_approval or pending.group is not group:
                return  # decided while the rules were consulted
            if not verdict.allowed or verdict.required_role is None:
                self._rejected_in_time(
                    pending,
                    f"rejected: no decision for the {seat.role} seat in time and no level above it is "
                    "left; an approver group is never approved by a timeout",
                )
                return
            before, seat.role, seat.eligible = seat.role, verdict.required_role, verdict.eligible_approvers
            seat.due = (
                workflow.now() + timedelta(seconds=verdict.decision_timeout_seconds)
                if verdict.decision_timeout_seconds
                else None
            )
            case.event(
                "approval_escalated",
                "rules",
                f"{pending.proposal_id}: no decision for the {before} seat of group {group.name} in time: "
                f"now {seat.role} or above",
                proposal_id=pending.proposal_id,
                required_role=seat.role,
                seat=before,
            )
            self._ask(pending, seat.role)
        self._group_due(pending)

    def _rejected_in_time(self, pending: ProposalRecord, why: str) -> None:
        """No decision came in time and the rules do not approve it: the customer is told, the case's escalation
        role too."""
        case = self.case
        pending.decided_by = "rules:approval-timeout"
        pending.decided_at = workflow.now()
        pending.status = ProposalStatus.rejected
        case.approval_due = None
        case.set_stage(Stage.in_progress)
        case.event(
            "remedy_rejected",
            "rules",
            f"{pending.proposal_id} {why}",
            proposal_id=pending.proposal_id,
            rule_version=case.rule_version,
        )
        self.notices.tell_customer(Template.remedy_declined, proposal=pending)
        self.notices.tell_staff(
            Template.remedy_failed,
            case.escalate_to,
            proposal=pending,
            reason="no approver decided in time; the customer was sent an apology",
        )

    # ------------------------------------------------------------ a crisis' common remedy

    async def take_common_remedy(self, remedy: CommonRemedy) -> None:
        """Verified here, whatever the crisis watch said: a signal may come from anyone with namespace access."""
        case = self.case
        key = f"{remedy.crisis_id}:{remedy.proposal_id}"
        if remedy.crisis_id not in case.crises or remedy.crisis_id not in case.crisis_keys:
            # linked by the watch's signal, and about the same thing by the case's own triage: a signal
            # alone (anyone can send one) does not make a case part of a crisis' remedy
            raise refusal(f"this case is not linked to crisis {remedy.crisis_id}")
        if key in case.crisis_remedies:
            return
        if case.stage.is_final or case.withdrawal or case.resolution:
            case.crisis_remedies.add(key)
            self._skipped(remedy)
            return
        proposal = RemedyProposal(
            kind=remedy.kind,
            amount=remedy.amount,
            currency=remedy.currency,
            reason=f"crisis {remedy.crisis_id}: {remedy.reason}",
            proposed_by=remedy.proposed_by,
        )
        if remedy.signed_by is None:
            verdict = await self._rules_on(
                kind=remedy.kind, amount=remedy.amount, currency=remedy.currency, proposed_by=remedy.proposed_by
            )
            if verdict.needs_approval:
                raise refusal(
                    f"unsigned: {remedy.proposal_id} of crisis {remedy.crisis_id} needs an approver's "
                    f"signature on this case ({verdict.reason})"
                )
            approver = None
            reason = f"common remedy {remedy.proposal_id} of crisis {remedy.crisis_id}: {verdict.reason}"
        else:
            claim = approvals.claim(
                remedy.crisis_id,
                remedy.proposal_id,
                remedy.decision,
                remedy.amount,
                remedy.currency,
                remedy.signed_by,
                remedy.signed_at,
                remedy.signature,
                workflow.now(),
                kind=remedy.kind,
                crisis=True,
                passkey=remedy.passkey,
            )
            fingerprint = approvals.admissible(
                claim, workflow.now(), case.used_signatures, max_age=signatures.CRISIS_SIGNATURE_MAX_AGE
            )
            authority = await self._authority(remedy.signed_by, remedy.kind, remedy.amount, remedy.currency)
            approvals.proven(claim, authority)
            if not authority.covers:
                raise refusal(
                    f"{remedy.signed_by} may not grant {remedy.amount} {remedy.currency} of "
                    f"{remedy.kind.value} on this case"
                )
            if authority.group is not None:
                await self._to_group(remedy, proposal, key, fingerprint, authority.group)
                return
            approver = remedy.signed_by
            reason = (
                f"common remedy {remedy.proposal_id} of crisis {remedy.crisis_id}, signed by "
                f"{remedy.signed_by} ({approvals.acting(authority)}) and verified"
            )
            if key not in case.crisis_remedies:
                case.used_signatures.add(fingerprint)
        if key in case.crisis_remedies:
            return
        case.crisis_remedies.add(key)
        if case.stage.is_final or case.withdrawal or case.resolution:
            self._skipped(remedy)
            return
        verdict = ProposalVerdict(allowed=True, needs_approval=False, reason="")
        actor = f"approver:{approver}" if approver else f"crisis:{remedy.crisis_id}"
        self.record(proposal, verdict, actor, reason, approved_by=approver, automatic=approver is None)

    async def _to_group(
        self, remedy: CommonRemedy, proposal: RemedyProposal, key: str, fingerprint: str, group: str
    ) -> None:
        """A crisis' common remedy that this case's rules give to an approver group: one signature does not grant
        it here; it awaits the group's approval on the case like any proposal."""
        case = self.case
        verdict = await self._rules_on(
            kind=remedy.kind, amount=remedy.amount, currency=remedy.currency, proposed_by=remedy.proposed_by
        )
        if key in case.crisis_remedies:
            return
        case.crisis_remedies.add(key)
        case.used_signatures.add(fingerprint)
        if case.stage.is_final or case.withdrawal or case.resolution:
            self._skipped(remedy)
            return
        if case.pending_approval() or case.held_proposal() or not verdict.allowed:
            busy = "another proposal awaits a decision" if verdict.allowed else verdict.reason
            self._skipped(remedy, f"it needs approver group {group} on this case, and {busy}")
            return
        reason = (
            f"common remedy {remedy.proposal_id} of crisis {remedy.crisis_id}, signed by {remedy.signed_by}: "
            f"on this case it needs approver group {group} ({verdict.reason})"
        )
        self.record(proposal, verdict, f"crisis:{remedy.crisis_id}", reason)

    def _skipped(self, remedy: CommonRemedy, why: str | None = None) -> None:
        self.case.event(
            "crisis_remedy_skipped",
            f"crisis:{remedy.crisis_id}",
            f"{remedy.proposal_id} not applied: {why or f'the case is {self.case.stage.value}'}",
        )

    # ------------------------------------------------------------ payouts

    def _executed_template(self, proposal: ProposalRecord) -> str:
        """An apology goes out in the name of the role the rules chose at triage (apology_by), in that role's words;
        every other remedy, and an apology the rules name no one for, as `remedy_executed`."""
        triage = self.case.triage
        if proposal.kind == RemedyKind.apology and triage and triage.apology_by:
            return f"apology.{triage.apology_by}"
        return Template.remedy_executed

    async def execute(self, proposal_id: str) -> bool:
        """Carry out an approved remedy through the payment peer; False if it refused (back to a person)."""
        case = self.case
        complaint = case.received
        proposal = case.proposal(proposal_id)
        case.executing = proposal_id
        order = RemedyOrder(
            complaint_id=case.id,
            proposal_id=proposal_id,
            kind=proposal.kind,
            amount=proposal.amount,
            currency=proposal.currency,
            customer_id=complaint.customer.id,
            order_id=complaint.order.id if complaint.order else None,
            with_evidence=bool(case.evidence),
        )
        # its notice goes along with the payment, unless notices wait in the queue (they go first)
        along = not self.notices.queue and not self.notices.sending
        if along:
            order.then_tell = self.notices.for_customer(self._executed_template(proposal), proposal=proposal)
        try:
            receipt = await self.run(ComplaintActivities.execute_remedy, order)
        except StepRefused as refused:
            reason = str(refused)
            proposal.status = ProposalStatus.failed
            case.executing = None
            case.set_stage(Stage.awaiting_approval if case.pending_approval() else Stage.in_progress)
            case.event(
                "remedy_failed",
                "payment",
                f"{proposal_id} was refused: {reason}; back to a person",
                proposal_id=proposal_id,
            )
            self.notices.tell_staff(Template.remedy_failed, case.escalate_to, proposal=proposal, reason=reason)
            return False
        proposal.status = ProposalStatus.executed
        proposal.transaction_id = receipt.transaction_id
        case.count("redress_payouts", kind=proposal.kind.value, currency=proposal.currency)
        case.executing = None
        case.set_stage(Stage.awaiting_approval if case.pending_approval() else Stage.remedy_executed)
        case.event(
            "remedy_executed",
            "payment",
            f"{proposal_id}: {proposal.kind.value} {proposal.amount} {proposal.currency} ({receipt.via})",
            proposal_id=proposal_id,
            transaction_id=receipt.transaction_id,
        )
        if not along:
            self.notices.tell_customer(self._executed_template(proposal), proposal=proposal)
        elif order.then_tell is not None and not self.notices.sent_along(order.then_tell, receipt.told):
            self.notices.queue.append(order.then_tell)
        return True
