"""The approval matrix: who may grant how much, judged with the live directory and a case's pinned policy.

Two sources, on purpose:
- **policy** is pinned: the roles, their limits, the automatic limit, timeouts and
  fallback come from the rule version the case was triaged under, so a case is
  decided by the rules it started with;
- **identity** is live: who holds which role and key, delegations and revocations
  come from the current directory (the newest valid `approvers`, `delegations`
  and `revoked_keys`), read at the moment of decision. A key registered after a
  proposal counts for it; a key revoked after it no longer does.

A person's role is looked up by name in the pinned roles: a role the pinned
version does not know gives no authority.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from activities.io import Authority, AuthorityCheck, ProposalCheck, ProposalVerdict
from activities.rules.loader import RuleSet
from activities.rules.schema import ApprovalGroup, RuleSetDocument
from redress.contract import ApprovalSeat, GroupApproval, RemedyOffer


@dataclass(frozen=True)
class Standing:
    """A person's effective place in the pinned roles today."""

    rank: int
    role: str
    acting_for: str | None = None


def today_at(policy: RuleSet, at: datetime | None) -> date:
    """The day `at` falls on in the approval time zone (delegations run by days there)."""
    moment = at or datetime.now(UTC)
    return moment.astimezone(ZoneInfo(policy.document.approval.time_zone)).date()


def standings(policy: RuleSet, directory: RuleSetDocument, today: date) -> dict[str, Standing]:
    """Each person's rank today: their own role's, or an absent colleague's they stand in for, if higher."""
    rank = {role.role: position for position, role in enumerate(policy.document.approval.roles)}
    found = {
        name: Standing(rank[person.role], person.role)
        for name, person in directory.approvers.items()
        if person.role in rank
    }
    for delegation in directory.delegations:
        absent = found.get(delegation.absent)
        if not delegation.active(today) or absent is None:
            continue
        own = found.get(delegation.delegate)
        if own is None or absent.rank > own.rank:
            found[delegation.delegate] = Standing(absent.rank, absent.role, acting_for=delegation.absent)
    return found


def public_key(directory: RuleSetDocument, person: str) -> str | None:
    """The person's key in the directory, unless it was revoked."""
    entry = directory.approvers.get(person)
    if entry is None or entry.public_key is None:
        return None
    revoked = {r.public_key for r in directory.revoked_keys}
    return None if entry.public_key in revoked else entry.public_key


def passkeys(directory: RuleSetDocument, person: str) -> dict[str, str]:
    """The person's passkeys in the directory (credential id -> public key), but for revoked ones."""
    entry = directory.approvers.get(person)
    if entry is None:
        return {}
    return {p.id: p.public_key for p in entry.passkeys if p.revoked_by(directory.revoked_keys) is None}


def _identity(directory: RuleSet, person: str) -> dict:
    """Who the live directory says the person is: their keys, and where their passkeys may sign."""
    document = directory.document
    party = document.relying_party
    return {
        "person": person,
        "directory_version": directory.version,
        "public_key": public_key(document, person),
        "passkeys": passkeys(document, person),
        "relying_party_id": party.id if party else None,
        "origins": list(party.origins) if party else [],
    }


def _covers(policy: RuleSet, position: int, kind, amount, currency: str) -> bool:
    limit = policy.document.approval.roles[position].limit(kind, currency)
    return limit is None or amount <= limit


def authority_of(policy: RuleSet, directory: RuleSet, check: AuthorityCheck) -> Authority:
    """What `check.person` may grant of this remedy on this case, by the live directory and the pinned limits.

    `group` names the approver group whose rule covers the remedy, if any: then no one signature grants it,
    whatever the signer's limits. With `check.seats` (a group's), `fits` says which seats they may fill.
    """
    approval = policy.document.approval
    roles = approval.roles
    group = approval.group_for(check.kind, check.amount, check.currency, check.granted_before)
    standing = standings(policy, directory.document, today_at(policy, check.at)).get(check.person)
    fits = _fits(policy, directory, check, standing)
    if standing is None:
        entry = directory.document.approvers.get(check.person)
        countersigner = entry is not None and entry.role in approval.countersign_roles
        return Authority(
            **_identity(directory, check.person),
            role=entry.role if countersigner and entry else None,
            fits=fits,
            group=group.name if group else None,
        )
    level = next((i for i, role in enumerate(roles) if role.role == check.at_least), None)
    return Authority(
        **_identity(directory, check.person),
        role=standing.role,
        acting_for=standing.acting_for,
        covers=_covers(policy, standing.rank, check.kind, check.amount, check.currency),
        at_level=check.at_least is None or (level is not None and standing.rank >= level),
        fits=fits,
        group=group.name if group else None,
    )


def _fits(policy: RuleSet, directory: RuleSet, check: AuthorityCheck, standing: Standing | None) -> list[int]:
    """Which of a group's seats the person may fill today, in the order they should fill them: a countersign seat
    of their own role first, then the most demanding ranked seat (so that a director who signs fills a director's
    seat before a team lead's, and the people below stay free for the rest).

    A ranked seat: their rank is the seat's or above (and for the seat that must cover the amount, their
    limits do). A countersign seat: the live directory gives them exactly that role.
    """
    rank = {role.role: position for position, role in enumerate(policy.document.approval.roles)}
    entry = directory.document.approvers.get(check.person)
    fits = []
    for index, seat in enumerate(check.seats):
        if seat.countersign:
            if entry is not None and entry.role == seat.role:
                fits.append(index)
        elif (
            standing is not None
            and seat.role in rank
            and standing.rank >= rank[seat.role]
            and (not seat.must_cover or _covers(policy, standing.rank, check.kind, check.amount, check.currency))
        ):
            fits.append(index)
    # a countersign seat first: its holder's own role; a ranked seat they may fill only by standing in for someone
    return sorted(fits, key=lambda i: (not check.seats[i].countersign, -rank.get(check.seats[i].role, 0)))


def check_offer(policy: RuleSet, complaint_id: str, offer: RemedyOffer) -> ProposalVerdict:
    """Who would have to approve an offered remedy if an agent proposed it as offered (rules explain, the lab)."""
    check = ProposalCheck(
        complaint_id=complaint_id,
        rule_version=policy.version,
        kind=offer.kind,
        amount=offer.amount,
        currency=offer.currency or "CNY",
        proposed_by="(an agent)",
    )
    return check_proposal(policy, check)


def check_proposal(policy: RuleSet, check: ProposalCheck, directory: RuleSet | None = None) -> ProposalVerdict:
    """Who must approve this remedy, and what evidence it waits for first (the case's pinned rules).

    For a customer flagged for review (claimant_flags), every remedy that is not free needs an
    approver's decision: the automatic limit does not apply, nor may the proposer grant it.
    """
    flagged = check.case is not None and check.case.flagged is not None
    verdict = _approval(policy, check, directory, automatic_limit=not flagged)
    if flagged and verdict.needs_approval:
        verdict.flagged = True
        verdict.reason = f"{verdict.reason}; the customer is flagged for review, so no one approves their own"
    if check.case is not None:
        rule = next(
            (
                rule
                for rule in policy.document.evidence_required
                if rule.matches(check.kind, check.amount, check.currency, check.case)
            ),
            None,
        )
        if rule is not None:
            verdict.evidence_kinds = list(rule.evidence)
            verdict.evidence_reason = rule.reason(check.kind, check.amount, check.currency)
    return verdict


def _approval(
    policy: RuleSet, check: ProposalCheck, directory: RuleSet | None = None, automatic_limit: bool = True
) -> ProposalVerdict:
    """Who must approve this remedy: nobody for free kinds, or while the case stays within the automatic limit.

    The automatic limit is per case and currency: what the case was already granted
    under it counts (`check.auto_used`), so repeating a small proposal cannot add up
    past it. A kind that is not free but carries no amount (a repair, a replacement:
    goods, not money) is never automatic. Above that, the verdict names the level that
    must decide and who holds it today. A proposer whose authority covers the amount
    may still grant it themself, but only with a verified signature: the workflow
    decides that, with `verdict.proposer`.
    """
    directory = directory or policy
    doc = policy.document
    roles = doc.approval.roles
    if check.kind in doc.approval.free_kinds:
        return ProposalVerdict(allowed=True, needs_approval=False, reason=f"{check.kind.value} costs nothing")
    ranks = standings(policy, directory.document, today_at(policy, check.at))
    proposer = None
    if check.signed:
        proposer = authority_of(
            policy,
            directory,
            AuthorityCheck(
                complaint_id=check.complaint_id,
                rule_version=check.rule_version,
                person=check.proposed_by,
                kind=check.kind,
                amount=check.amount,
                currency=check.currency,
                at=check.at,
            ),
        )

    def covers(position: int) -> bool:
        return _covers(policy, position, check.kind, check.amount, check.currency)

    if check.above_role is not None:
        return _next_level(policy, directory, check, ranks, covers)
    group = doc.approval.group_for(check.kind, check.amount, check.currency, check.granted_before)
    auto = doc.approval.auto_approve.get(check.currency)
    if (
        automatic_limit
        and group is None
        and auto is not None
        and check.amount > 0
        and check.amount + check.auto_used <= auto
    ):
        used = f" (with the {check.auto_used} {check.currency} granted before)" if check.auto_used else ""
        return ProposalVerdict(
            allowed=True,
            needs_approval=False,
            within_auto_limit=True,
            reason=f"within the rules' auto-approve limit of {auto} {check.currency}{used}",
        )
    required = next((position for position in range(len(roles)) if covers(position)), None)
    if required is None:
        return ProposalVerdict(
            allowed=False,
            needs_approval=True,
            proposer=proposer,
            reason=f"no role may approve {check.amount} {check.currency}: the approval matrix has no limit "
            f"in {check.currency}",
        )
    if group is not None:
        return _group(policy, directory, check, group, ranks, required, proposer)
    eligible = _eligible(ranks, required, check.proposed_by)
    if not eligible:
        return ProposalVerdict(
            allowed=False,
            needs_approval=True,
            required_role=roles[required].role,
            proposer=proposer,
            reason=f"nobody in the approver directory besides the proposer holds {roles[required].role} or above; "
            f"a proposer whose own authority covers it can sign the proposal instead",
        )
    return _level(
        policy,
        directory,
        check,
        required,
        eligible,
        f"{check.amount} {check.currency} needs {roles[required].role} or above",
        proposer,
    )


def _eligible(ranks: dict[str, Standing], level: int, proposer: str, exclude: list[str] | None = None) -> list[str]:
    """Who may decide at this level: anyone holding it or above today, except the proposer (four eyes) and
    those who signed a group's other seats (`exclude`)."""
    left_out = {proposer, *(exclude or [])}
    return sorted(name for name, standing in ranks.items() if standing.rank >= level and name not in left_out)


def _group(
    policy: RuleSet,
    directory: RuleSet,
    check: ProposalCheck,
    group: ApprovalGroup,
    ranks: dict[str, Standing],
    required: int,
    proposer: Authority | None,
) -> ProposalVerdict:
    """An approver group decides: its seats, each ranked one at least at the level the amount needs."""
    approval = policy.document.approval
    roles = approval.roles
    rank = {role.role: position for position, role in enumerate(roles)}
    ranked = [spec for spec in group.seats if spec.role not in approval.countersign_roles]
    top = max(ranked, key=lambda spec: rank[spec.role])  # the schema insists on one ranked seat at least
    seats = []
    for spec in group.seats:
        if spec.role in approval.countersign_roles:
            holders = sorted(
                name
                for name, person in directory.document.approvers.items()
                if person.role == spec.role and name != check.proposed_by
            )
            seats.append(ApprovalSeat(role=spec.role, count=spec.count, countersign=True, eligible=holders))
            continue
        if spec is top:  # one signer's own authority covers the amount: the highest seat, raised to that level
            level = max(rank[spec.role], required)
            eligible = _eligible(ranks, level, check.proposed_by)
            seats.append(ApprovalSeat(role=roles[level].role, must_cover=True, eligible=eligible))
            if spec.count == 1:
                continue
        count = spec.count - 1 if spec is top else spec.count
        eligible = _eligible(ranks, rank[spec.role], check.proposed_by)
        seats.append(ApprovalSeat(role=spec.role, count=count, eligible=eligible))
    seated = GroupApproval(name=group.name, seats=seats)
    problem = _unfillable(seated, rank)
    what = f"{check.amount} {check.currency} of {check.kind.value} needs group {group.name}: {seated.describe()}"
    if problem:
        return ProposalVerdict(allowed=False, needs_approval=True, proposer=proposer, reason=f"{what}, but {problem}")
    everyone = sorted({name for seat in seats for name in seat.eligible})
    timeout = approval.decision_timeout.total_seconds() if approval.decision_timeout else None
    return ProposalVerdict(
        allowed=True,
        needs_approval=True,
        eligible_approvers=everyone,
        approver_keys={name: key for name in everyone if (key := public_key(directory.document, name))},
        reason=f"{what}, each a different person",
        decision_timeout_seconds=timeout,
        proposer=proposer,
        group=seated,
    )


def _unfillable(group: GroupApproval, rank: dict[str, int]) -> str | None:
    """Why the directory cannot fill every seat with different people, or None.

    Countersign seats draw on their own role's holders. Ranked seats are nested (who may fill a higher
    one may fill a lower one), so walking them from the most demanding down, each level must have as many
    people as the seats at it and above ask for.
    """
    wanted: dict[str, int] = {}
    for seat in group.seats:
        if seat.countersign:
            wanted[seat.role] = wanted.get(seat.role, 0) + seat.count
    for seat in group.seats:
        if seat.countersign and len(seat.eligible) < wanted[seat.role]:
            return f"the approver directory has {len(seat.eligible)} {seat.role} besides the proposer"
    need = 0
    for seat in sorted((s for s in group.seats if not s.countersign), key=lambda s: -rank[s.role]):
        need += seat.count
        if len(seat.eligible) < need:
            held = f"only {len(seat.eligible)}" if seat.eligible else "nobody"
            return f"{held} besides the proposer at {seat.role} or above, and {need} must sign"
    return None


def _level(
    policy: RuleSet,
    directory: RuleSet,
    check: ProposalCheck,
    required: int,
    eligible: list[str],
    reason: str,
    proposer: Authority | None = None,
) -> ProposalVerdict:
    approval = policy.document.approval
    keys = {name: key for name in eligible if (key := public_key(directory.document, name))}
    timeout = approval.decision_timeout.total_seconds() if approval.decision_timeout else None
    return ProposalVerdict(
        allowed=True,
        needs_approval=True,
        required_role=approval.roles[required].role,
        eligible_approvers=eligible,
        approver_keys=keys,
        reason=reason,
        decision_timeout_seconds=timeout,
        fallback=approval.fallback.action,
        fallback_cap=approval.fallback.cap.get(check.currency),
        proposer=proposer,
    )


def _next_level(
    policy: RuleSet, directory: RuleSet, check: ProposalCheck, ranks: dict[str, Standing], covers
) -> ProposalVerdict:
    """The level above `check.above_role` that may grant the amount, or no level (the fallback applies)."""
    roles = policy.document.approval.roles
    rank = {role.role: position for position, role in enumerate(roles)}
    above = rank[check.above_role] + 1 if check.above_role in rank else len(roles)
    for position in range(above, len(roles)):
        eligible = _eligible(ranks, position, check.proposed_by, check.exclude)
        if covers(position) and len(eligible) >= check.need:
            return _level(
                policy,
                directory,
                check,
                position,
                eligible,
                f"no decision from {check.above_role} in time: now {roles[position].role} or above",
            )
    approval = policy.document.approval
    return ProposalVerdict(
        allowed=False,
        needs_approval=True,
        reason=f"no level above {check.above_role} is left",
        fallback=approval.fallback.action,
        fallback_cap=approval.fallback.cap.get(check.currency),
    )
