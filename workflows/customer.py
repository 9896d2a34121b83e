"""One long-lived workflow per customer: their complaints across cases, and the churn watch after a close.

Why a workflow and not a visibility query: its answers are consistent the
moment a complaint is recorded (visibility lags), and the churn watch is a
durable timer per closed case that a purchase cancels.

- The triage activity records each new complaint with update-with-start
  (`complaint_opened`) and gets back the facts the rules read:
  `customer.complaints_90d` and `order.open_complaints`.
- A case that ends sends `complaint_ended` (signal-with-start, from an activity).
  A closed case starts a churn watch when the rules have one.
- The order system sends `customer_purchased` (signal-with-start): it ends the
  watches of cases closed before the purchase.
- A case that pays the customer sends `remedy_paid` (signal-with-start, from the
  payment activity): `customer.payouts_90d`, `paid_amount_90d` and
  `claims_without_evidence` count them. Triage may flag the customer for review
  (`flag_customer`: the rules' `claimant_flags`); a supervisor removes a flag with
  `clear_flag`, after which the rules may not flag them again for a while.
- A watch whose window passes without a purchase sends the care package
  (activity), once.

History stays bounded: the workflow continues as new when Temporal suggests
it, carrying its state, and ends once it holds nothing (no complaint inside the
repeat window, no open case, no watch).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from workflows.handover import continue_as_new_if_suggested, ended_on_bad_state
from workflows.policies import ACTIVITY_TIMEOUT, PATIENT_RETRY

with workflow.unsafe.imports_passed_through():
    from activities.complaint_activities import ComplaintActivities
    from redress.contract import CUSTOMER_WORKFLOW_TYPE, FUTURE_TOLERANCE, DataExported
    from redress.customers import (
        DATA_EXPORTED,
        MAX_LOG,
        AccessEvent,
        CareOrder,
        CaseEntry,
        ChurnWatch,
        ClaimantFlag,
        ComplaintEnded,
        ComplaintOpened,
        CustomerFacts,
        CustomerState,
        FlagClearance,
        FlagEvent,
        FlagRequest,
        Payout,
        Purchase,
        paid_per_currency,
    )
    from workflows.messages import problems, receives, refusal, takes


MAX_PAYOUTS = 500  # payouts kept within the window: a record's state stays bounded whatever is paid
MAX_KEEP = timedelta(days=3 * 366)  # the longest a record is kept from now (windows, clearances, audits)


@workflow.defn(name=CUSTOMER_WORKFLOW_TYPE)
class CustomerRecord:
    @workflow.init
    def __init__(self, raw: Any) -> None:
        self._state, self._refused = problems(CustomerState, raw, root="input")
        self._replan = False  # a message changed what to wait for: compute the sleep again

    @property
    def state(self) -> CustomerState:
        """The state; one that refused its input has none, and refuses every message."""
        if self._state is None:
            raise refusal("this record refused its input and is ending")
        return self._state

    @workflow.run
    async def run(self, raw: Any) -> CustomerState:
        if self._state is None:  # junk input: the run ends at once, failing with the reason
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise refusal("; ".join(self._refused))
        return await ended_on_bad_state(self._live())

    async def _live(self) -> CustomerState:
        while True:
            self._replan = False
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: (
                        self._replan or self._due_watch() is not None or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=self._sleep(),
                    timeout_summary="next churn watch or end of record",
                )
            watch = self._due_watch()
            if watch is not None:
                await self._send_care(watch)
                continue
            await continue_as_new_if_suggested(self.state)
            if self._holds_nothing():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._holds_nothing():
                    return self.state

    def _sleep(self) -> timedelta | None:
        """Until the next watch falls due or the record may end."""
        moments = [w.due for w in self.state.watches]
        if self.state.keep_until:
            moments.append(self.state.keep_until)
        if not moments:
            return timedelta(days=1)
        return max(timedelta(seconds=0.01), min(moments) - workflow.now())

    def _due_watch(self) -> ChurnWatch | None:
        now = workflow.now()
        return next((w for w in self.state.watches if w.due <= now), None)

    def _holds_nothing(self) -> bool:
        state = self.state
        return (
            not state.watches
            and not any(c.open for c in state.cases)
            and (state.keep_until is None or state.keep_until <= workflow.now())
        )

    async def _send_care(self, watch: ChurnWatch) -> None:
        self.state.watches.remove(watch)
        await workflow.execute_activity_method(
            ComplaintActivities.send_care_package,
            CareOrder(customer_id=self.state.customer_id, ended=watch.ended),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=PATIENT_RETRY,
        )
        self.state.care_sent.append(watch.ended.complaint_id)

    @workflow.update
    @takes(ComplaintOpened)
    def complaint_opened(self, opened: ComplaintOpened) -> CustomerFacts:
        state = self.state
        if not any(c.complaint_id == opened.complaint_id for c in state.cases):  # a retried triage counts once
            state.cases.append(
                CaseEntry(complaint_id=opened.complaint_id, order_id=opened.order_id, received_at=opened.received_at)
            )
        window = timedelta(seconds=opened.window_seconds)
        since = opened.received_at - window
        state.cases = [c for c in state.cases if c.open or c.received_at >= since]
        self._keep(opened.received_at + window)
        state.payouts = [p for p in state.payouts if p.at >= since]
        without_evidence = {p.complaint_id for p in state.payouts} - {
            p.complaint_id for p in state.payouts if p.with_evidence
        }
        return CustomerFacts(
            complaints_in_window=sum(1 for c in state.cases if since <= c.received_at <= opened.received_at),
            open_on_order=sum(
                1
                for c in state.cases
                if c.open
                and opened.order_id
                and c.order_id == opened.order_id
                and c.complaint_id != opened.complaint_id
            ),
            payouts_in_window=len(state.payouts),
            paid_in_window=paid_per_currency(state.payouts),
            claims_without_evidence=len(without_evidence),
            flag=state.flag,
            flag_cleared_until=state.flag_cleared_until,
        )

    def _keep(self, until: datetime) -> None:
        """The record lives at least until then (the repeat window after its latest complaint or payout).

        Never beyond MAX_KEEP from now: a date sent from far in the future (any message may come from
        anyone) would otherwise leave the record a state its next run refuses as its input.
        """
        state = self.state
        until = min(until, workflow.now() + MAX_KEEP)
        state.keep_until = max(state.keep_until, until) if state.keep_until else until
        self._replan = True

    @complaint_opened.validator
    @takes(ComplaintOpened)
    def _check_opened(self, opened: ComplaintOpened) -> None:
        """Reading the message is the check (a refusal here leaves no trace in history).

        The record must have taken its input.
        """
        self._require_state()

    def _require_state(self) -> None:
        if self._state is None:
            raise refusal("this record refused its input and is ending")

    @workflow.signal
    @receives(ComplaintEnded)
    def complaint_ended(self, ended: ComplaintEnded) -> None:
        self._require_state()
        for case in self.state.cases:
            if case.complaint_id == ended.complaint_id:
                case.open = False
        watched = {w.ended.complaint_id for w in self.state.watches} | set(self.state.care_sent)
        if ended.stage == "closed" and ended.churn_window_seconds and ended.complaint_id not in watched:
            self.state.watches.append(
                ChurnWatch(ended=ended, due=ended.ended_at + timedelta(seconds=ended.churn_window_seconds))
            )
        self._replan = True

    @workflow.signal
    @receives(Purchase)
    def customer_purchased(self, purchase: Purchase) -> None:
        self._require_state()
        at = purchase.at or workflow.now()
        self.state.last_purchase_at = max(at, self.state.last_purchase_at or at)
        self.state.watches = [w for w in self.state.watches if w.ended.ended_at > at]
        self._replan = True

    @workflow.signal
    @receives(Payout)
    def remedy_paid(self, payout: Payout) -> None:
        """Counted once per proposal, however often the payment activity that sends it is retried."""
        self._require_state()
        state = self.state
        if payout.at > workflow.now() + FUTURE_TOLERANCE:
            raise refusal("remedy_paid: at is in the future")
        if any(p.complaint_id == payout.complaint_id and p.proposal_id == payout.proposal_id for p in state.payouts):
            return
        state.payouts.append(payout)
        state.payouts = state.payouts[-MAX_PAYOUTS:]
        self._keep(payout.at + timedelta(seconds=payout.window_seconds))

    @workflow.update
    @takes(FlagRequest)
    def flag_customer(self, request: FlagRequest) -> CustomerState:
        """The rules at triage, or a supervisor: from now on, every remedy on their new cases needs approval.

        A flag the rules ask for while a supervisor's clearance runs is not set (they reviewed these
        facts); a supervisor may flag at any time. Flagged already: nothing changes.
        """
        state = self.state
        now = workflow.now()
        by_rules = request.by.startswith("rules:")
        if state.flag is None and not (by_rules and state.flag_cleared_until and state.flag_cleared_until > now):
            state.flag = ClaimantFlag(
                reason=request.reason,
                by=request.by,
                at=now,
                complaint_id=request.complaint_id,
                cleared_for_seconds=request.cleared_for_seconds,
            )
            self._log(FlagEvent(action="flagged", by=request.by, at=now, reason=request.reason))
            self._keep(now + timedelta(seconds=request.keep_seconds))
        return state

    @flag_customer.validator
    @takes(FlagRequest)
    def _check_flag(self, request: FlagRequest) -> None:
        self._require_state()

    @workflow.update
    @takes(FlagClearance)
    def clear_flag(self, clearance: FlagClearance) -> CustomerState:
        state = self.state
        now = workflow.now()
        assert state.flag is not None  # the validator refuses a clearance of no flag
        cleared_for = clearance.for_seconds or state.flag.cleared_for_seconds
        state.flag = None
        state.flag_cleared_until = now + timedelta(seconds=cleared_for)
        self._log(FlagEvent(action="cleared", by=clearance.by, at=now, reason=clearance.note))
        self._keep(state.flag_cleared_until)
        return state

    @clear_flag.validator
    @takes(FlagClearance)
    def _check_clearance(self, clearance: FlagClearance) -> None:
        self._require_state()
        if self.state.flag is None:
            raise refusal("this customer is not flagged")

    @workflow.signal(name=DATA_EXPORTED)
    @receives(DataExported)
    def data_exported(self, exported: DataExported) -> None:
        self._require_state()
        event = AccessEvent(action="exported", by=exported.by, at=workflow.now(), cases=exported.cases)
        self.state.access_log = [*self.state.access_log, event][-MAX_LOG:]
        self._keep(event.at + timedelta(seconds=exported.keep_seconds))

    def _log(self, event: FlagEvent) -> None:
        self.state.flag_log = [*self.state.flag_log, event][-MAX_LOG:]

    def _signal_refused(self, name: str, reason: str) -> None:
        """A signal cannot be refused to its sender: log that it was ignored (the reason names fields only)."""
        workflow.logger.warning(f"{name} signal ignored", extra={"reason": reason})

    @workflow.query
    def record(self) -> CustomerState:
        return self.state
