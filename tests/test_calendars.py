"""Business-time arithmetic against known dates (expected values from the published schedules, not the code).

China 2025: National Day + Mid-Autumn off 1-8 Oct; make-up working days Sun 28 Sep and Sat 11 Oct.
China 2026: Spring Festival off 15-23 Feb; make-up working days Sat 14 Feb and Sat 28 Feb.
Germany 2026: Good Friday 3 Apr, Easter Monday 6 Apr; summer time from Sun 29 Mar (CET -> CEST).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from activities.io import TriageFacts
from activities.rules import RulesInvalid, load_rules
from activities.rules.engine import triage
from activities.rules.loader import build_calendar
from activities.rules.schema import CalendarSpec
from redress.contract import ComplaintInput
from tests.helpers.cases import complaint
from tests.helpers.processes import ROOT

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def calendar(**spec):
    return build_calendar("test", CalendarSpec.model_validate({"hours": OFFICE, **spec}))


def at(zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


cn = calendar(time_zone="Asia/Shanghai", country="CN")


@pytest.mark.parametrize(
    "start, hours, expected",
    [
        # crosses the whole National Day week and ends on the make-up Saturday
        (at(SHANGHAI, 2025, 9, 30, 17), 24, at(SHANGHAI, 2025, 10, 11, 14)),
        # "24 business hours from Friday 17:00": works the make-up Sunday 28 Sep
        (at(SHANGHAI, 2025, 9, 26, 17), 24, at(SHANGHAI, 2025, 9, 30, 14)),
        # Friday 17:00 after the holiday: make-up Saturday 11 Oct counts, Sunday 12 does not
        (at(SHANGHAI, 2025, 10, 10, 17), 24, at(SHANGHAI, 2025, 10, 14, 14)),
        # Spring Festival 2026: make-up Saturday 14 Feb, then nothing until Tuesday 24 Feb
        (at(SHANGHAI, 2026, 2, 13, 17), 24, at(SHANGHAI, 2026, 2, 25, 14)),
        # an ordinary weekend
        (at(SHANGHAI, 2026, 3, 6, 17), 2, at(SHANGHAI, 2026, 3, 9, 10)),
        # received at night: the clock starts when the office opens
        (at(SHANGHAI, 2026, 3, 10, 23), 1, at(SHANGHAI, 2026, 3, 11, 10)),
    ],
)
def test_china_business_hours(start, hours, expected):
    assert cn.add(start, timedelta(hours=hours)) == expected


def test_china_working_days_and_make_up_days():
    assert not cn.is_working_day(date(2025, 10, 8)) and not cn.is_working_day(date(2025, 10, 1))
    assert cn.is_working_day(date(2025, 9, 28)) and cn.is_working_day(date(2025, 10, 11))  # Sunday, Saturday
    assert not cn.is_working_day(date(2025, 10, 12))  # an ordinary Sunday
    assert cn.is_working_day(date(2026, 2, 14)) and cn.is_working_day(date(2026, 2, 28))
    assert not any(cn.is_working_day(date(2026, 2, d)) for d in range(15, 24))
    assert cn.is_working_day(date(2025, 1, 26)) and not cn.is_working_day(date(2025, 2, 4))


def test_daylight_saving_change_in_berlin():
    de = calendar(time_zone="Europe/Berlin", country="DE")
    start = at(BERLIN, 2026, 3, 27, 17)  # Friday, CET (UTC+1)
    due = de.add(start, timedelta(hours=10))
    assert due == at(BERLIN, 2026, 3, 30, 18)  # Monday 18:00 local, now CEST
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 16, tzinfo=UTC)
    assert de.between(start, due) == timedelta(hours=10)
    utc = UTC
    assert due.astimezone(utc) - start.astimezone(utc) == timedelta(hours=72)  # 73 on the wall clock
    # Easter: Good Friday and Easter Monday are holidays
    assert de.add(at(BERLIN, 2026, 4, 2, 17), timedelta(hours=10)) == at(BERLIN, 2026, 4, 7, 18)


def test_admin_overrides_close_and_open_days():
    custom = calendar(
        time_zone="Asia/Shanghai",
        country="CN",
        closed=["2026-03-09"],
        working=["2026-03-07"],
        make_up_day_hours=["10:00-16:00"],
    )
    # Saturday 7 Mar opened (Saturday has no hours: make-up hours apply), Monday 9 Mar closed
    assert custom.add(at(SHANGHAI, 2026, 3, 6, 17), timedelta(hours=8)) == at(SHANGHAI, 2026, 3, 10, 10)


def test_lunch_breaks_and_between():
    split = calendar(time_zone="Asia/Shanghai", hours={d: ["09:00-12:00", "13:00-18:00"] for d in OFFICE})
    assert split.add(at(SHANGHAI, 2026, 3, 10, 11), timedelta(hours=2)) == at(SHANGHAI, 2026, 3, 10, 14)
    assert split.between(at(SHANGHAI, 2026, 3, 10, 0), at(SHANGHAI, 2026, 3, 11, 0)) == timedelta(hours=8)


def rules_with_calendar(tmp_path, calendar_yaml: str):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "calendars.yaml").write_text(calendar_yaml, encoding="utf-8")
    tiers = (rules / "tiers.yaml").read_text(encoding="utf-8")
    (rules / "tiers.yaml").write_text(
        tiers.replace("    escalate_to: team_lead\n", "    escalate_to: team_lead\n    calendar: cn-office\n"),
        encoding="utf-8",
    )
    return rules


CN_CALENDAR = """calendars:
  cn-office:
    time_zone: Asia/Shanghai
    country: CN
    hours: {mon: [09:00-18:00], tue: [09:00-18:00], wed: [09:00-18:00], thu: [09:00-18:00], fri: [09:00-18:00]}
"""


def test_calendar_without_holiday_data_for_next_year_is_refused_naming_the_year(tmp_path):
    rules = rules_with_calendar(tmp_path, CN_CALENDAR)
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules, today=date(2026, 11, 22))
    [error] = refused.value.errors
    assert error.file.endswith("calendars.yaml") and (error.line, error.column) == (4, 14)
    assert "no holiday data for CN 2027" in error.message
    load_rules(rules, today=date(2025, 6, 1))  # 2025 and 2026 are published: fine

    (rules / "calendars.yaml").write_text(CN_CALENDAR + "    accept_missing_holiday_data: [2027]\n", encoding="utf-8")
    load_rules(rules, today=date(2026, 11, 22))


def test_general_tier_deadlines_in_business_time(tmp_path):
    rules = load_rules(rules_with_calendar(tmp_path, CN_CALENDAR), today=date(2025, 6, 1))
    received = at(SHANGHAI, 2025, 9, 30, 17)
    facts = TriageFacts.of(
        ComplaintInput.model_validate(complaint(received_at=received.isoformat(), text="just a question"))
    )
    result = triage(rules, facts)
    assert result.severity.value == "general"
    # 48 business hours: 1 on 30 Sep, none 1-8 Oct, 9+9 on 9-10 Oct, 9 on Sat 11 Oct, 9+9+2 -> Wed 15 Oct 11:00
    assert result.deadlines["first_response"] == at(SHANGHAI, 2025, 10, 15, 11)


def test_bad_calendar_fields_are_located(tmp_path):
    rules = rules_with_calendar(
        tmp_path,
        CN_CALENDAR.replace("Asia/Shanghai", "Asia/Shanghi").replace("fri: [09:00-18:00]", "fri: [18:00-09:00]"),
    )
    with pytest.raises(RulesInvalid) as refused:
        load_rules(rules, today=date(2025, 6, 1))
    messages = [str(e) for e in refused.value.errors]
    assert any(":3:16: calendars.cn-office.time_zone: unknown time zone 'Asia/Shanghi'" in m for m in messages), (
        messages
    )
    assert any("calendars.cn-office.hours.fri.0" in m and "must end after it starts" in m for m in messages), messages


def test_round_the_clock_calendar_counts_real_hours_across_the_switch():
    always = calendar(
        time_zone="Europe/Berlin", hours={d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    )
    # 01:00 CET on the night clocks go forward: three real hours later it is 05:00 CEST
    assert always.add(at(BERLIN, 2026, 3, 29, 1), timedelta(hours=3)) == at(BERLIN, 2026, 3, 29, 5)
    assert always.between(at(BERLIN, 2026, 3, 29, 0), at(BERLIN, 2026, 3, 30, 0)) == timedelta(hours=23)
    assert always.add(at(BERLIN, 2026, 3, 28, 23), timedelta(hours=2)) == at(BERLIN, 2026, 3, 29, 1)


def test_documented_example_calendar_loads_and_counts_its_closure(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    shutil.copy(ROOT / "docs" / "examples" / "calendars.yaml", rules / "calendars.yaml")
    office = load_rules(rules, today=date(2026, 11, 22)).calendars["cn-office"]
    # Wed 30 Dec 17:00 + 2h: 17-18, then 31 Dec closed (admin), 1 Jan holiday, 2-3 Jan weekend -> Mon 4 Jan 10:00
    assert office.add(at(SHANGHAI, 2026, 12, 30, 17), timedelta(hours=2)) == at(SHANGHAI, 2027, 1, 4, 10)


def test_a_pause_over_the_weekend_costs_only_the_working_time_it_covered(tmp_path):
    from activities.io import PauseShift
    from activities.rules.engine import shift_for_pause

    rules = load_rules(rules_with_calendar(tmp_path, CN_CALENDAR), today=date(2025, 6, 1))
    shift = PauseShift(
        rule_version=rules.version,
        severity="general",
        deadlines={
            "resolution": at(SHANGHAI, 2026, 3, 9, 12),  # Monday noon
            "first_response": at(SHANGHAI, 2026, 3, 6, 12),
        },  # missed before the pause
        paused_from=at(SHANGHAI, 2026, 3, 6, 17),
        paused_to=at(SHANGHAI, 2026, 3, 9, 10),
    )
    shifted = shift_for_pause(rules, shift)
    # paused Fri 17-18 and Mon 9-10: two working hours, so Monday noon becomes Monday 14:00
    assert shifted.paused_seconds == 2 * 3600
    assert shifted.deadlines["resolution"] == at(SHANGHAI, 2026, 3, 9, 14)
    assert shifted.deadlines["first_response"] == at(SHANGHAI, 2026, 3, 6, 12)
