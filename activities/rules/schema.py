"""The shape of the rule YAML, as pydantic models: the loader reports their errors with positions.

A rule set is the union of the top-level sections found in rules/*.yaml; each
section lives in exactly one file so an admin always knows where to edit.
"""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from decimal import Decimal
from enum import StrEnum
from string import Formatter
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from activities.io import ProposalCase
from activities.rules.durations import Duration, Offset
from activities.rules.keywords import fold
from redress.contract import Currency, EvidenceKind, Money, RemedyKind, Severity
from redress.trends import Dimension

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


def _parse_span(value: object) -> object:
    if not isinstance(value, str):
        return value
    match = _SPAN.match(value.replace(" ", ""))
    if not match:
        raise ValueError(f"{value!r} is not a span of hours: write e.g. 09:00-12:00")
    start_h, start_m, end_h, end_m = (int(g) for g in match.groups())
    start = time(start_h, start_m)
    end = time.max if (end_h, end_m) == (24, 0) else time(end_h, end_m)
    if end <= start:
        raise ValueError(f"{value!r}: a span must end after it starts (no overnight spans; split them)")
    return (start, end)


HoursSpan = Annotated[tuple[time, time], BeforeValidator(_parse_span)]


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like Asia/Shanghai)") from None
    return value


TimeZone = Annotated[str, AfterValidator(_zone)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CalendarSpec(_Strict):
    """Working time: hours per weekday in a zone, minus public holidays, plus make-up days and overrides."""

    time_zone: TimeZone
    hours: dict[Weekday, list[HoursSpan]]
    country: str | None = Field(default=None, description="ISO 3166 code for public holidays (holidays package).")
    subdivision: str | None = None
    make_up_day_hours: list[HoursSpan] | None = Field(
        default=None, description="Hours on a make-up working day (调休); default: Monday's hours."
    )
    closed: list[date] = Field(default_factory=list, description="Extra days off (e.g. a company holiday).")
    working: list[date] = Field(default_factory=list, description="Extra working days.")
    accept_missing_holiday_data: list[int] = Field(
        default_factory=list,
        description="Years the admin accepts without holiday data (add the days by hand in closed/working).",
    )

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value not in holidays.list_supported_countries():
            raise ValueError(f"the holidays package has no country {value!r} (use an ISO 3166 code like CN, DE)")
        return value

    @model_validator(mode="after")
    def _some_hours(self) -> CalendarSpec:
        if not any(self.hours.values()):
            raise ValueError("a calendar needs working hours on at least one weekday")
        return self


DeadlineName = Literal["first_response", "resolution", "next_update"]


class Payout(_Strict):
    """A remedy paid automatically when a step fires (e.g. a missed resolution deadline)."""

    kind: RemedyKind
    amount: Money
    currency: Currency
    reason: str = "deadline missed"
    needs_approval: bool = Field(
        default=False,
        description="false: the rule is the authority and it pays at once; true: the approval matrix applies.",
    )


class EscalationStep(_Strict):
    """One level of an escalation chain, `after` the deadline (negative: a warning before it)."""

    after: Offset
    notify: Identifier | None = Field(default=None, description="Role to notify.")
    raise_severity: Severity | None = Field(default=None, description="Raise the case to at least this tier.")
    reassign: Identifier | None = Field(default=None, description="Move the case to this queue.")
    page: Identifier | None = Field(default=None, description="A person (approver directory name) to page.")
    pay: Payout | None = Field(default=None, description="Compensate the customer automatically, once.")

    @model_validator(mode="after")
    def _does_something(self) -> EscalationStep:
        if not (self.notify or self.raise_severity or self.reassign or self.page or self.pay):
            raise ValueError("a step needs at least one of notify, raise_severity, reassign, page, pay")
        if self.after < timedelta(0) and (self.raise_severity or self.reassign or self.pay):
            raise ValueError("a warning (negative `after`) may only notify or page")
        return self


def _in_firing_order(steps: list[EscalationStep], where: str = "") -> None:
    """A chain's steps fire in order of `after`: the file must list them so."""
    if [step.after for step in steps] != sorted(step.after for step in steps):
        raise ValueError(f"{where}list the steps in order of `after` (they fire in that order)")


class TeamClock(_Strict):
    """An operational-level agreement (OLA): when a case is handed to this queue (at triage, by a rule's reassign,
    or a retriage), the team owes it an answer `within` (counted as the case's tier counts time), with its own
    warnings and escalation chain inside the team. Separate from the customer's deadlines: a missed team clock
    is not a missed customer deadline, raises no severity and pays nothing."""

    within: Duration
    escalation: list[EscalationStep] = Field(
        default_factory=list,
        description="In order of `after`; without one, a miss notifies the tier's escalate_to role.",
    )
    description: str | None = Field(default=None, max_length=500)

    @field_validator("escalation")
    @classmethod
    def _inside_the_team(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        _in_firing_order(steps)
        if any(s.pay or s.raise_severity for s in steps):
            raise ValueError(
                "a team clock's steps notify, page or reassign: pay and raise_severity are the "
                "customer's deadlines' to use"
            )
        return steps


class Tier(_Strict):
    first_response: Duration
    resolution: Duration
    escalate_to: Identifier = Field(description="Role notified when a deadline of this tier is missed.")
    next_update: Duration | None = Field(
        default=None, description="While open, the customer hears from us at least this often."
    )
    calendar: Identifier | None = Field(
        default=None, description="Count the durations in this calendar's working time; absent: calendar time."
    )
    escalation: dict[DeadlineName, list[EscalationStep]] = Field(
        default_factory=dict,
        description="Chains per deadline, in order of `after`; a deadline without one notifies escalate_to "
        "when missed.",
    )

    @field_validator("escalation")
    @classmethod
    def _in_order(cls, chains: dict[str, list[EscalationStep]]) -> dict[str, list[EscalationStep]]:
        for name, steps in chains.items():
            _in_firing_order(steps, f"{name}: ")
        return chains


class TargetOverride(_Strict):
    """Targets for cases matching a category, queue and/or tier; the first match wins per target."""

    category: Identifier | None = None
    queue: Identifier | None = None
    severity: Severity | None = None
    first_response: Duration | None = None
    resolution: Duration | None = None
    next_update: Duration | None = None

    @model_validator(mode="after")
    def _matches_and_sets(self) -> TargetOverride:
        if not (self.category or self.queue or self.severity):
            raise ValueError("say which cases it is for: category, queue and/or severity")
        if not (self.first_response or self.resolution or self.next_update):
            raise ValueError("set at least one of first_response, resolution, next_update")
        return self

    def matches(self, category: str | None, queue: str | None, severity: Severity) -> bool:
        return (
            (self.category is None or self.category == category)
            and (self.queue is None or self.queue == queue)
            and (self.severity is None or self.severity == severity)
        )


class FollowUp(_Strict):
    survey_window: Duration = Field(description="How long the survey waits for an answer before closing.")
    reopen_below: Annotated[int, Field(ge=1, le=6)] = Field(
        default=3, description="A CSAT score below this reopens the case."
    )


class Defaults(_Strict):
    category: Identifier = "other"
    queue: Identifier = "general"
    severity: Severity = Severity.general


class Effect(_Strict):
    category: Identifier | None = None
    queue: Identifier | None = None
    fallback_queue: Identifier | None = Field(
        default=None,
        description="The queue when no fired rule sets one: what the customer asks for (a refund) may say who "
        "takes a complaint nothing else places, without saying what it is about.",
    )
    severity: Severity | None = Field(default=None, description="Raises the tier to at least this.")
    tags: list[Identifier] = Field(default_factory=list)


Keyword = Annotated[str, Field(min_length=1)]
KeywordWeight = Annotated[float, Field(ge=-100, le=100)]


class TriageRule(_Strict):
    """Fires when any keyword is in the text (if keywords are given) and `when` is true (if given)."""

    name: Identifier
    description: str | None = None
    keywords: list[Keyword | dict[Keyword, KeywordWeight]] = Field(
        default_factory=list,
        description="Words or phrases; `{phrase: weight}` gives one its own weight (category_by: evidence), "
        "negative for evidence against the rule's category ('arrived in perfect condition').",
    )
    when: str | None = Field(default=None, description="A CEL expression.")
    set: Effect
    negation: bool = Field(
        default=False,
        description="A keyword said in the negative ('not damaged', '没有破损') does not count for this rule.",
    )
    weight: Annotated[float, Field(gt=0, le=100)] = Field(
        default=1.0,
        description="With `category_by: evidence`: what the rule counts for its category, per keyword found "
        "(a keyword with its own weight counts that instead).",
    )

    @field_validator("keywords")
    @classmethod
    def _one_weight_each(cls, keywords: list[str | dict[str, float]]) -> list[str | dict[str, float]]:
        for item in keywords:
            if isinstance(item, dict) and len(item) != 1:
                raise ValueError("a weighted keyword is one `phrase: weight` pair, e.g. {态度恶劣: 2}")
            word = item if isinstance(item, str) else next(iter(item))
            if not re.search(r"\w", word):  # " ", ".", "*" would be found in nearly every text
                raise ValueError(f"keyword {word!r} has no letter, digit or character of a word")
        return keywords

    @property
    def words(self) -> list[str]:
        """The keywords as listed, without their weights."""
        return [item if isinstance(item, str) else next(iter(item)) for item in self.keywords]

    @property
    def keyword_weights(self) -> dict[str, float]:
        """Keyword (folded as the matcher reports it) -> its own weight, for the keywords that have one."""
        return {fold(word): weight for item in self.keywords if isinstance(item, dict) for word, weight in item.items()}

    @model_validator(mode="after")
    def _has_condition(self) -> TriageRule:
        if not self.keywords and not self.when:
            raise ValueError("a rule needs `keywords`, `when`, or both; otherwise it always fires")
        return self


class OfferRule(_Strict):
    """A remedy suggested to the agent when `when` holds (evaluated after triage)."""

    name: Identifier
    description: str | None = None
    when: str | None = None
    kind: RemedyKind
    amount: Money | None = None
    order_value_share: Annotated[Decimal, Field(gt=0, le=1)] | None = Field(
        default=None, description="Amount as a share of the order value (1 = the full value)."
    )
    currency: Currency | None = None

    @model_validator(mode="after")
    def _one_amount(self) -> OfferRule:
        if self.amount is not None and self.order_value_share is not None:
            raise ValueError("give `amount` or `order_value_share`, not both")
        return self


class ApologyRule(_Strict):
    """Whose name an apology goes out in: the first rule that matches the case names the role; its words are the
    template `apology.<role>`, per language. Each list left empty matches any case; a case matches a rule when
    it is in every list given. Plain lists, like `targets`, not CEL: triage weighs them for every complaint."""

    role: Identifier
    severity: list[Severity] = Field(default_factory=list, max_length=3)
    category: list[Identifier] = Field(default_factory=list, max_length=100)
    queue: list[Identifier] = Field(default_factory=list, max_length=100)
    regions: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=300, description="The complaint's `metadata.region`, any of these."
    )
    description: str | None = None

    @field_validator("regions")
    @classmethod
    def _regions_folded(cls, regions: list[str]) -> list[str]:
        """`JP`, `jp` and ` jp ` are one region (metadata.region is compared the same way)."""
        return [region.strip().casefold() for region in regions]

    def matches(self, severity: Severity, category: str, queue: str, region: object) -> bool:
        return (
            (not self.severity or severity in self.severity)
            and (not self.category or category in self.category)
            and (not self.queue or queue in self.queue)
            and (not self.regions or (isinstance(region, str) and region.strip().casefold() in self.regions))
        )

    def why(self) -> str:
        """What it matched, for `rules explain`."""
        said = [
            f"{name} in {', '.join(map(str, values))}"
            for name, values in (
                ("severity", [s.value for s in self.severity]),
                ("category", self.category),
                ("queue", self.queue),
                ("metadata.region", self.regions),
            )
            if values
        ]
        return " and ".join(said) or "every case"


class EvidenceRule(_Strict):
    """Evidence before a remedy: an agent's proposal that matches waits until evidence of one of `evidence`'s kinds
    is on the case (a photo before a refund for damage). A proposal matches when its kind is in `remedies` and
    the case is in every other list given (an empty list matches any); with `above`, only amounts above it
    in that currency, and in a currency `above` does not list, any amount (the safe side). Plain lists, like
    `apology_by`: an admin reads at a glance which refunds wait. The rules' own payouts (a missed deadline's
    guarantee) and a crisis' common remedy never wait: the company owes them, whatever the customer shows."""

    name: Identifier
    remedies: list[RemedyKind] = Field(min_length=1, max_length=10)
    evidence: list[EvidenceKind] = Field(min_length=1, max_length=4, description="Any one of these releases it.")
    category: list[Identifier] = Field(default_factory=list, max_length=100)
    severity: list[Severity] = Field(default_factory=list, max_length=3)
    queue: list[Identifier] = Field(default_factory=list, max_length=100)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=100, description="The case carries any of these (set by triage rules)."
    )
    above: dict[Currency, Money] = Field(default_factory=dict, description="Only amounts above these.")
    description: str | None = Field(default=None, max_length=500)

    def matches(self, kind: RemedyKind, amount: Decimal, currency: str, case: ProposalCase) -> bool:
        threshold = self.above.get(currency)
        return (
            kind in self.remedies
            and (not self.category or case.category in self.category)
            and (not self.severity or case.severity in self.severity)
            and (not self.queue or case.queue in self.queue)
            and (not self.tags or any(tag in self.tags for tag in case.tags))
            and (threshold is None or amount > threshold)
        )

    def reason(self, kind: RemedyKind, amount: Decimal, currency: str) -> str:
        """What the agent and the timeline are told the proposal waits for."""
        kinds = " or ".join(k.value for k in self.evidence)
        threshold = self.above.get(currency)
        above = f" above {threshold} {currency}" if threshold is not None else ""
        why = f": {self.description}" if self.description else ""
        return f"a {kind.value}{above} needs a {kinds} on the case first (rule {self.name}){why}"


class ApprovalRole(_Strict):
    role: Identifier
    limits: dict[Currency, Money] | None = Field(
        default=None, description="Highest amount this role may grant per currency; absent = unlimited."
    )
    kind_limits: dict[RemedyKind, dict[Currency, Money]] = Field(
        default_factory=dict, description="Limits for particular remedy kinds, replacing `limits` for those kinds."
    )

    def limit(self, kind: RemedyKind, currency: str) -> Decimal | None:
        """The most this role may grant; None means unlimited, 0 no authority in that currency."""
        limits = self.kind_limits.get(kind, self.limits)
        if limits is None:
            return None
        return limits.get(currency, Decimal(0))


class ApprovalFallback(_Strict):
    """What happens when even the highest level does not decide in time."""

    action: Literal["reject", "approve"] = "reject"
    cap: dict[Currency, Money] = Field(
        default_factory=dict, description="approve: only up to this amount per currency; above it, reject."
    )


class GroupSeat(_Strict):
    """A seat of an approver group: `count` different people holding `role` (a ranked role: or above)."""

    role: Identifier
    count: StrictInt = Field(default=1, ge=1, le=5)


class ApprovalGroup(_Strict):
    """Above a threshold one approver is not enough (four eyes across several): every seat must be filled,
    each by a different person, none of them the proposer; a rejection by anyone who could fill an open
    seat ends it, and a group's approval is never granted by a timeout.

    A group adds signatures, it never lowers the bar: its highest ranked seat is asked of at least the
    level the matrix names for the amount (that one signer's authority covers it); so a group has one
    ranked seat at least. Validity of the seat roles is checked across sections (reference_problems).
    """

    name: Identifier
    kinds: list[RemedyKind] = Field(default_factory=list, description="Empty: every kind that is not free.")
    above: dict[Currency, Money] = Field(
        min_length=1, description="Applies above this amount per currency (not in a currency it does not list)."
    )
    seats: list[GroupSeat] = Field(min_length=1, max_length=5)

    @model_validator(mode="after")
    def _more_than_one(self) -> ApprovalGroup:
        if sum(seat.count for seat in self.seats) < 2:
            raise ValueError("a group needs two approvers or more (one is the matrix's ordinary approval)")
        return self

    def matches(self, kind: RemedyKind, amount: Decimal, currency: str, granted_before: Decimal) -> bool:
        """Whether it decides this remedy: of its kinds, and above its threshold with what the case was granted of
        the kind before (three payouts of 2000 need the group that one of 6000 would)."""
        threshold = self.above.get(currency)
        within_kinds = not self.kinds or kind in self.kinds
        return threshold is not None and within_kinds and amount + granted_before > threshold


def _named_once(names: list[str], problem: str) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{problem}: {', '.join(duplicates)}")


class Approval(_Strict):
    roles: list[ApprovalRole] = Field(min_length=1, description="Lowest authority first.")
    countersign_roles: list[Identifier] = Field(
        default_factory=list,
        max_length=20,
        description="Roles outside the ranking (finance, legal): no authority of their own, they fill group seats.",
    )
    groups: list[ApprovalGroup] = Field(
        default_factory=list, max_length=20, description="Approver groups: the first whose rule matches decides."
    )
    auto_approve: dict[Currency, Money] = Field(
        default_factory=dict, description="Amounts up to this execute at once, whoever proposes them."
    )
    decision_timeout: Duration | None = Field(
        default=None, description="How long each level has to decide before the next level is asked."
    )
    fallback: ApprovalFallback = Field(default_factory=ApprovalFallback)
    free_kinds: list[RemedyKind] = Field(
        default_factory=lambda: [RemedyKind.apology, RemedyKind.explanation],
        description="Remedies that cost nothing and need no approval.",
    )
    time_zone: TimeZone = Field(default="UTC", description="Delegations begin and end on days in this zone.")

    @field_validator("groups")
    @classmethod
    def _groups_named_once(cls, groups: list[ApprovalGroup]) -> list[ApprovalGroup]:
        _named_once([group.name for group in groups], "group named twice")
        return groups

    @field_validator("roles")
    @classmethod
    def _unique(cls, roles: list[ApprovalRole]) -> list[ApprovalRole]:
        _named_once([role.role for role in roles], "role listed twice")
        return roles

    def group_for(
        self, kind: RemedyKind, amount: Decimal, currency: str, granted_before: Decimal = Decimal(0)
    ) -> ApprovalGroup | None:
        """The approver group whose rule covers this remedy (free kinds never need one)."""
        if kind in self.free_kinds or amount <= 0:
            return None
        return next((group for group in self.groups if group.matches(kind, amount, currency, granted_before)), None)

    def all_roles(self) -> set[str]:
        """Every role a person may hold: the ranked ones and the countersigning ones."""
        return {role.role for role in self.roles} | set(self.countersign_roles)


class Passkey(_Strict):
    """A person's passkey (WebAuthn credential), registered in the console: it signs decisions there."""

    id: Annotated[str, Field(min_length=1, max_length=1400, pattern=r"^[A-Za-z0-9_-]+$")] = Field(
        description="The credential id, base64url."
    )
    public_key: str = Field(description="The credential's COSE public key, base64url (ES256 or EdDSA).")
    added_on: date | None = None
    label: Annotated[str, Field(max_length=100)] | None = None

    @field_validator("public_key")
    @classmethod
    def _cose(cls, value: str) -> str:
        from redress.passkeys import public_key_problem

        problem = public_key_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("id")
    @classmethod
    def _canonical_id(cls, value: str) -> str:
        from redress.passkeys import canonical

        if not canonical(value):
            raise ValueError("not unpadded base64url")
        return value

    def revoked_by(self, revoked: list[RevokedKey]) -> RevokedKey | None:
        """The `revoked_keys` entry that revoked this passkey: by credential id, or by the key itself."""
        from redress.passkeys import key_identity

        identity = key_identity(self.public_key)
        for entry in revoked:
            if entry.credential_id == self.id or entry.public_key == self.public_key:
                return entry
            if identity is not None and key_identity(entry.public_key) == identity:
                return entry
        return None


class RelyingParty(_Strict):
    """Where passkeys sign: the WebAuthn relying party id (the console's host name) and the console's origins.

    An assertion signed on any other origin, or for another relying party, proves nothing here.
    """

    id: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9.-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=100)] = "Redress"
    origins: list[Annotated[str, Field(pattern=r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")]] = Field(min_length=1)

    @model_validator(mode="after")
    def _origins_on_the_id(self) -> RelyingParty:
        for origin in self.origins:
            host = origin.split("://", 1)[1].split(":", 1)[0]
            if host != self.id and not host.endswith("." + self.id):
                raise ValueError(f"origin {origin} is not on {self.id} or a subdomain of it")
            if origin.startswith("http://") and host != "localhost":
                raise ValueError(f"origin {origin}: passkeys need https except on localhost")
        return self


class Approver(_Strict):
    role: Identifier
    public_key: str | None = Field(
        default=None, description="Ed25519 public key, base64 (from `redress keys new NAME`); needed to approve."
    )
    passkeys: list[Passkey] = Field(default_factory=list, max_length=20)

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        from redress.signatures import is_public_key

        if value is not None and not is_public_key(value):
            raise ValueError("not an Ed25519 public key (base64 of 32 bytes): copy it from `redress keys new`")
        return value


class RevokedKey(_Strict):
    """A key that must never approve again (`redress keys revoke NAME`): kept so it cannot come back by mistake.

    An Ed25519 key or a passkey's public key, as the directory held it.
    """

    name: Identifier
    public_key: str
    revoked_on: date
    credential_id: str | None = Field(default=None, description="A passkey's credential id, when it was one.")


class Delegation(_Strict):
    """While `absent` is away, `delegate` decides with the absent approver's authority (signing with their own key)."""

    absent: Identifier
    delegate: Identifier
    until: date = Field(description="Last day of the absence (inclusive).")
    since: date | None = None

    def active(self, today: date) -> bool:
        return (self.since is None or self.since <= today) and today <= self.until


class Repeat(_Strict):
    """Repeat complaints and claims: what `customer.complaints_90d`, `order.open_complaints`,
    `customer.payouts_90d`, `customer.paid_amount_90d` and `customer.claims_without_evidence` count."""

    window: Duration = Field(default=timedelta(days=90), description="How far back customer.complaints_90d counts.")
    currency: Currency = Field(
        default="CNY", description="What customer.paid_amount_90d adds up (payouts in other currencies: not added)."
    )
    cleared_for: Duration = Field(
        default=timedelta(days=90), description="After a supervisor clears a flag, the rules may not flag again."
    )


class ClaimantFlagRule(_Strict):
    """Flag a customer for review when `when` holds at triage: from then on every remedy on their new cases needs
    an approver's decision (the automatic limit and a proposer's own authority no longer grant it). The reason is
    for staff, in the timeline and the customer's record: never an accusation, never told to the customer."""

    name: Identifier
    when: str = Field(min_length=1, description="CEL, over what offers read (customer.payouts_90d, ...).")
    reason: str = Field(min_length=1, max_length=500)


class RootCauseSpec(_Strict):
    """One root cause an agent may name when resolving: what the lessons are fed back by."""

    description: str = Field(max_length=500, description="What it means, for the agents choosing it.")


class CarePackage(_Strict):
    """What a customer who has not bought again is sent: a message, and a remedy if one is given."""

    template: Identifier
    kind: RemedyKind | None = None
    amount: Money = Decimal("0")
    currency: Currency = "CNY"


class Churn(_Strict):
    """Churn watch: after a case closes, a purchase within `window` means the customer stayed."""

    window: Duration = Field(default=timedelta(days=30))
    profile_field: str = Field(default="customer_profile", description="The complaint metadata key with the profile.")
    packages: dict[Identifier, CarePackage] = Field(
        description="By customer profile; `default` for customers whose profile is not listed (none: nothing sent)."
    )


class Crisis(_Strict):
    """Crisis detection: many complaints about one thing in a short time."""

    key: Literal["sku", "category", "queue"] = Field(
        default="sku", description="What groups complaints: the order's product_sku, the category or the queue."
    )
    window: Duration = Field(default=timedelta(hours=1))
    threshold: Annotated[int, Field(ge=2)] = 20
    notify: Identifier = Field(default="crisis_team", description="The role told when a crisis is declared.")
    raise_to: Severity = Severity.major


def _hour_and_minute(value: object) -> object:
    """Only "HH:MM" (a number would be read as seconds, an offset or seconds silently dropped)."""
    if not isinstance(value, str) or not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise ValueError('give the time of day as "HH:MM", e.g. "07:00"')
    return value


class Trends(_Strict):
    """The trend watch, run daily by a Temporal Schedule (workflows/trends.py): complaint volume per UTC day from
    visibility, per category and per product; a warning to `notify` when yesterday left the usual band, or when
    the forecast for the next `horizon_days` rises above it."""

    at: Annotated[time, BeforeValidator(_hour_and_minute)] = Field(
        default=time(7, 0), description='When it runs each day, in `time_zone`: "HH:MM".'
    )
    time_zone: TimeZone = "UTC"
    by: list[Dimension] = Field(default=["category", "product"], min_length=1, max_length=2)
    history_days: Annotated[int, Field(ge=7, le=365)] = Field(
        default=28, description="UTC days of volume it reads, ending yesterday."
    )
    horizon_days: Annotated[int, Field(ge=1, le=14)] = Field(default=3, description="How far ahead it forecasts.")
    band: Annotated[float, Field(ge=1, le=10)] = Field(
        default=3.0, description="The usual band: the median day, give or take this many spreads."
    )
    min_cases: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        default=10, description="A category or product with fewer complaints over the history is not watched."
    )
    notify: Identifier = Field(default="cs_manager", description="The role warned.")

    @field_validator("by")
    @classmethod
    def _each_once(cls, by: list[Dimension]) -> list[Dimension]:
        if len(set(by)) != len(by):
            raise ValueError("each of category and product at most once (twice would count twice)")
        return by


class AgentLoad(_Strict):
    """Agent load: intense cases in a row wear people out."""

    intense_anger: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.6, description="A case at least this angry (sentiment.anger) is intense."
    )
    break_after: Annotated[int, Field(ge=1)] = 5
    break_length: Duration = Field(default=timedelta(minutes=15), description="How long a prompted agent is skipped.")
    agents: dict[Identifier, list[Identifier]] = Field(
        default_factory=dict, description="Agents per queue, in the order intense cases are offered to them."
    )


TEMPLATE_FIELDS = frozenset(
    {
        "complaint_id",
        "first_response_due",
        "resolution_due",
        "message",
        "remedy",
        "amount",
        "currency",
        "summary",
        "deadline",
        "severity",
        "queue",
        "level",
        "crisis",
        "count",
        "window",
        "agent",
        "role",
        "reason",
        "proposal_id",
        "due",
        "series",
        "day",
    }
)


class Template(StrEnum):
    """The notices the engine itself sends: rules/templates.yaml must word each (checked when the rules load).

    Care packages name their own templates in the rules (`churn.packages`).
    """

    acknowledgement = "acknowledgement"
    progress = "progress"
    remedy_executed = "remedy_executed"
    survey = "survey"
    closed = "closed"
    withdrawn = "withdrawn"
    reopened = "reopened"
    escalation = "escalation"
    deadline_warning = "deadline_warning"
    approval_needed = "approval_needed"
    remedy_failed = "remedy_failed"
    remedy_declined = "remedy_declined"
    crisis_declared = "crisis_declared"
    agent_break = "agent_break"


REQUIRED_TEMPLATES = frozenset(Template)
TREND_TEMPLATE = "trend_warning"  # required with a `trends:` section only


class RuleSetDocument(_Strict):
    tiers: dict[Severity, Tier]
    targets: list[TargetOverride] = Field(default_factory=list)
    follow_up: FollowUp
    defaults: Defaults = Field(default_factory=Defaults)
    category_by: Literal["first_match", "evidence"] = Field(
        default="first_match",
        description="first_match: the first fired rule that sets a category decides; evidence: every fired rule "
        "adds its weight (times the keywords it found) to its category, and the strongest category wins.",
    )
    evidence_to_decide: Annotated[float, Field(ge=0, le=100)] = Field(
        default=0,
        description="With `category_by: evidence`: the least a category's evidence must reach to win (more than "
        "0 always); below it the default decides, so a weak word alone ('parcel', weight 0.5) only tips a balance.",
    )
    rules: list[TriageRule] = Field(default_factory=list)
    offers: list[OfferRule] = Field(default_factory=list)
    apology_by: list[ApologyRule] = Field(
        default_factory=list,
        description="Who apologises: the first matching rule's role signs an executed apology (template "
        "`apology.<role>`); none matching, the apology goes out as any other remedy (`remedy_executed`).",
    )
    evidence_required: list[EvidenceRule] = Field(
        default_factory=list,
        max_length=200,
        description="Evidence before a remedy: the first matching rule holds an agent's proposal until evidence of "
        "a kind it names is on the case.",
    )
    claimant_flags: list[ClaimantFlagRule] = Field(
        default_factory=list, max_length=50, description="When to flag a customer for review (the first that holds)."
    )
    ola: dict[Identifier, TeamClock] = Field(
        default_factory=dict, description="Team clocks by queue: what a team owes a case handed to it."
    )
    calendars: dict[Identifier, CalendarSpec] = Field(default_factory=dict)
    approval: Approval
    approvers: dict[Identifier, Approver] = Field(default_factory=dict)
    delegations: list[Delegation] = Field(default_factory=list)
    revoked_keys: list[RevokedKey] = Field(default_factory=list)
    relying_party: RelyingParty | None = Field(default=None, description="Without it, passkeys decide nothing.")
    templates: dict[Identifier, dict[Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")], str]]
    repeat: Repeat = Field(default_factory=Repeat)
    root_causes: dict[Identifier, RootCauseSpec] = Field(
        default_factory=dict,
        max_length=100,
        description="What `resolve` names as the case's root cause; with none listed, resolve asks for none.",
    )
    churn: Churn | None = None
    trends: Trends | None = Field(default=None, description="The daily trend watch (none: it does not run).")
    crisis: Crisis | None = None
    agent_load: AgentLoad | None = None

    @field_validator("tiers")
    @classmethod
    def _every_tier(cls, tiers: dict[Severity, Tier]) -> dict[Severity, Tier]:
        missing = [s.value for s in Severity if s not in tiers]
        if missing:
            raise ValueError(f"every tier needs deadlines; missing: {', '.join(missing)}")
        return tiers

    @field_validator("templates")
    @classmethod
    def _templates(cls, templates: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        missing = sorted(REQUIRED_TEMPLATES - templates.keys())
        if missing:
            raise ValueError(f"missing templates: {', '.join(missing)}")
        for name, texts in templates.items():
            if "en" not in texts:
                raise ValueError(f"template {name!r} needs an 'en' text (the fallback language)")
            for language, text in texts.items():
                try:
                    fields = {f for _, f, _, _ in Formatter().parse(text) if f is not None}
                except ValueError as error:
                    raise ValueError(f"template {name}.{language}: {error}") from None
                unknown = sorted(fields - TEMPLATE_FIELDS)
                if unknown:
                    raise ValueError(
                        f"template {name}.{language} uses unknown placeholder(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(TEMPLATE_FIELDS))}"
                    )
        return templates


def reference_problems(doc: RuleSetDocument) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems that span sections (a role named but not defined, a name used twice), with their paths."""
    roles = doc.approval.all_roles()
    ranked = {r.role for r in doc.approval.roles}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for role in doc.approval.countersign_roles:
        if role in {r.role for r in doc.approval.roles}:
            at: tuple[str | int, ...] = ("approval", "countersign_roles", doc.approval.countersign_roles.index(role))
            problems.append((at, f"{role!r} is a ranked role already: a countersign role stands outside them"))
    for index, group in enumerate(doc.approval.groups):
        free = [kind.value for kind in group.kinds if kind in doc.approval.free_kinds]
        if free:
            problems.append(
                (("approval", "groups", index, "kinds"), f"{', '.join(free)} cost nothing: no group decides them")
            )
        if all(seat.role in doc.approval.countersign_roles for seat in group.seats):
            problems.append(
                (
                    ("approval", "groups", index, "seats"),
                    "a group needs a ranked seat: someone whose own authority covers the amount signs too",
                )
            )
        for seat_index, seat in enumerate(group.seats):
            if seat.role not in roles:
                at = ("approval", "groups", index, "seats", seat_index, "role")
                problems.append((at, f"unknown role {seat.role!r} (ranked or countersign_roles)"))
    for severity, tier in doc.tiers.items():
        if tier.escalate_to not in ranked:
            problems.append((("tiers", severity.value, "escalate_to"), f"unknown role {tier.escalate_to!r}"))
    for severity, tier in doc.tiers.items():
        if tier.calendar and tier.calendar not in doc.calendars:
            problems.append((("tiers", severity.value, "calendar"), f"unknown calendar {tier.calendar!r}"))
    # every chain, the customer's deadlines' and the team clocks': the roles it notifies, the people it pages
    chains: list[tuple[tuple[str | int, ...], list[EscalationStep]]] = [
        (("tiers", severity.value, "escalation", deadline), steps)
        for severity, tier in doc.tiers.items()
        for deadline, steps in tier.escalation.items()
    ] + [(("ola", queue, "escalation"), clock.escalation) for queue, clock in doc.ola.items()]
    for chain, steps in chains:
        for index, step in enumerate(steps):
            where = (*chain, index)
            if step.notify and step.notify not in roles:
                problems.append(((*where, "notify"), f"unknown role {step.notify!r}"))
            if step.page and step.page not in doc.approvers:
                problems.append(((*where, "page"), f"{step.page!r} is not in the approver directory"))
    if doc.category_by != "evidence":  # weights mean nothing when the first match decides
        for index, rule in enumerate(doc.rules):
            if rule.keyword_weights:
                problems.append(
                    (
                        ("rules", index, "keywords"),
                        "keywords with their own weight count only with `category_by: evidence`",
                    )
                )
    if doc.trends is not None and doc.trends.notify not in roles:
        problems.append((("trends", "notify"), f"unknown role {doc.trends.notify!r}"))
    if doc.trends is not None and TREND_TEMPLATE not in doc.templates:
        problems.append((("trends",), f"no template {TREND_TEMPLATE!r}: word the warning the trend watch sends"))
    for index, apology in enumerate(doc.apology_by):
        template = f"apology.{apology.role}"
        if template not in doc.templates:
            problems.append(
                (("apology_by", index, "role"), f"no template {template!r}: write the apology in this role's name")
            )
    for name, approver in doc.approvers.items():
        if approver.role not in roles:
            problems.append((("approvers", name, "role"), f"unknown role {approver.role!r}"))
    revoked = {r.public_key: r.name for r in doc.revoked_keys}
    for name, approver in doc.approvers.items():
        if approver.public_key in revoked:
            problems.append(
                (
                    ("approvers", name, "public_key"),
                    f"this key was revoked (revoked_keys: {revoked[approver.public_key]}); make a new one "
                    f"with `redress keys new {name} --register`",
                )
            )
        for index, passkey in enumerate(approver.passkeys):
            if (entry := passkey.revoked_by(doc.revoked_keys)) is not None:
                problems.append(
                    (
                        ("approvers", name, "passkeys", index, "public_key"),
                        f"this passkey was revoked (revoked_keys: {entry.name}); register a new one",
                    )
                )
    credentials: dict[str, str] = {}
    for name, approver in doc.approvers.items():
        for index, passkey in enumerate(approver.passkeys):
            if passkey.id in credentials:
                problems.append(
                    (
                        ("approvers", name, "passkeys", index, "id"),
                        f"this credential is already {credentials[passkey.id]}'s: one passkey, one person",
                    )
                )
            credentials[passkey.id] = name
    for index, delegation in enumerate(doc.delegations):
        for field in ("absent", "delegate"):
            if getattr(delegation, field) not in doc.approvers:
                problems.append(
                    (("delegations", index, field), f"{getattr(delegation, field)!r} is not in the approver directory")
                )
        if delegation.since and delegation.since > delegation.until:
            problems.append((("delegations", index, "until"), "ends before it starts"))
    named: tuple[tuple[str, list[str]], ...] = (
        ("rules", [rule.name for rule in doc.rules]),
        ("offers", [offer.name for offer in doc.offers]),
    )
    for section, names in named:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                problems.append(((section, index, "name"), f"name {name!r} is used twice"))
            seen.add(name)
    return problems


def holiday_data_problems(doc: RuleSetDocument, today: date) -> list[tuple[tuple[str | int, ...], str]]:
    """A calendar must have holiday data for this year and next, unless the admin accepted the gap."""
    from activities.rules.calendars import missing_holiday_years

    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, spec in doc.calendars.items():
        if not spec.country:
            continue
        wanted = [today.year, today.year + 1]
        missing = [y for y in missing_holiday_years(spec.country, wanted) if y not in spec.accept_missing_holiday_data]
        for year in missing:
            problems.append(
                (
                    ("calendars", name, "country"),
                    f"no holiday data for {spec.country} {year} in holidays {holidays.__version__}: upgrade the "
                    f"package, or add {year} to accept_missing_holiday_data and list that year's days off and "
                    f"make-up days in closed/working",
                )
            )
    return problems
