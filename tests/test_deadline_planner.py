"""The deadline planner alone: plain values in, the next event out (no server, no clock, no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from activities.io import PlannedStep
from redress.contract import Deadline
from workflows.deadlines import Due, DueEvent, chain, next_due

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


WARN = PlannedStep(after_seconds=-600, notify="team_lead")
LEVEL_1 = PlannedStep(after_seconds=0, notify="cs_manager")
LEVEL_2 = PlannedStep(after_seconds=1800, page="duty.manager")


def test_a_chain_fires_its_warnings_then_the_breach_then_its_levels():
    events = chain("resolution", Deadline(due=at(60)), [WARN, LEVEL_1, LEVEL_2], "team_lead")
    assert [(e.kind, e.at, e.step) for e in events] == [
        (Due.warning, at(50), WARN),
        (Due.breach, at(60), None),
        (Due.level, at(60), LEVEL_1),
        (Due.level, at(90), LEVEL_2),
    ]
    assert {e.deadline for e in events} == {"resolution"}


def test_without_a_chain_a_miss_notifies_the_tiers_role():
    events = chain("first_response", Deadline(due=at(30)), None, "cs_manager")
    assert events == [
        DueEvent(at(30), Due.breach, "first_response"),
        DueEvent(at(30), Due.level, "first_response", PlannedStep(after_seconds=0, notify="cs_manager")),
    ]


def test_the_earliest_unmet_event_is_next_and_fired_events_are_skipped():
    deadlines = {"first_response": Deadline(due=at(30)), "resolution": Deadline(due=at(60))}
    chains = {"resolution": [WARN, LEVEL_1]}
    assert next_due(deadlines, chains, "team_lead") == DueEvent(at(30), Due.breach, "first_response")

    deadlines["first_response"].met_at = at(10)  # met: its chain stops
    assert next_due(deadlines, chains, "team_lead") == DueEvent(at(50), Due.warning, "resolution", WARN)

    deadlines["resolution"].fired = 1  # the warning was acted on
    assert next_due(deadlines, chains, "team_lead") == DueEvent(at(60), Due.breach, "resolution")

    deadlines["resolution"].fired = 3  # the whole chain was
    assert next_due(deadlines, chains, "team_lead") is None


def test_nothing_is_due_while_the_case_waits_on_the_customer():
    deadlines = {"resolution": Deadline(due=at(60))}
    assert next_due(deadlines, {}, "team_lead", paused=True, approval_due=at(5), survey_until=at(5)) is None


def test_the_approval_timeout_and_the_survey_window_share_the_one_timer():
    deadlines = {"resolution": Deadline(due=at(60))}
    assert next_due(deadlines, {}, None, approval_due=at(20)) == DueEvent(at(20), Due.approval)
    assert next_due(deadlines, {}, None, survey_until=at(40)) == DueEvent(at(40), Due.survey)
    assert next_due(deadlines, {}, None, approval_due=at(90), survey_until=at(95)) == DueEvent(
        at(60), Due.breach, "resolution"
    )


def test_at_the_same_instant_events_go_by_name():
    deadlines = {"resolution": Deadline(due=at(60)), "next_update": Deadline(due=at(60))}
    assert next_due(deadlines, {}, None) == DueEvent(at(60), Due.breach, "next_update")
    assert next_due(deadlines, {}, None, approval_due=at(60)) == DueEvent(at(60), Due.approval)  # "approval" first


def test_each_event_names_its_timer_for_the_ui():
    assert DueEvent(at(1), Due.breach, "first_response").summary() == "first_response deadline"
    assert DueEvent(at(1), Due.warning, "resolution", WARN).summary() == "resolution warning"
    assert DueEvent(at(1), Due.level, "resolution", LEVEL_1).summary() == "resolution level"
    assert DueEvent(at(1), Due.approval).summary() == "approval timeout"
    assert DueEvent(at(1), Due.survey).summary() == "survey window"
