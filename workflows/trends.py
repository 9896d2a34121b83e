"""The trend watch: started every day by a Temporal Schedule (redress/trends.py), one short run each time.

One activity counts and forecasts (activities/trends.py); each warning then goes to
the rules' role as a staff notice, keyed by day and series so that a retried or
re-triggered run never tells anyone twice. The run's result is the report that
`redress trends` and `redress report` read back from the schedule.

It takes no input: whatever a caller passes is ignored, so no input can fail it.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from datetime import timedelta

    from activities.complaint_activities import ComplaintActivities
    from activities.io import StaffNotice
    from activities.rules.schema import TREND_TEMPLATE
    from redress.trends import TREND_WORKFLOW_TYPE, TrendReport

COUNTING_TIMEOUT = timedelta(minutes=10)  # a month of complaints listed from visibility, and a forecast process
NOTICE_TIMEOUT = timedelta(seconds=30)
# A day's run gives up after a few tries rather than waiting for ever: while one run lives the Schedule skips
# the next days (overlap: skip), so a fault that repeats must end this run, failed, and leave tomorrow's to run.
COUNTING_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=3.0, maximum_attempts=5)


@workflow.defn(name=TREND_WORKFLOW_TYPE)
class TrendWatch:
    @workflow.run
    async def run(self, *ignored: Any) -> TrendReport:
        report: TrendReport = await workflow.execute_activity_method(
            ComplaintActivities.watch_trends,
            workflow.now(),
            start_to_close_timeout=COUNTING_TIMEOUT,
            retry_policy=COUNTING_RETRY,
        )
        for series in report.warnings():
            notice = StaffNotice(
                complaint_id=f"trend:{series.by}",  # what logs show: never the name (a SKU is anyone's text)
                key=f"trend:{report.day}:{series.by}:{series.name}",
                template=TREND_TEMPLATE,
                role=report.notify or "",
                rule_version=report.rule_version,
                params={"series": series.label, "day": report.day.isoformat(), "reason": series.reason or ""},
            )
            await workflow.execute_activity_method(
                ComplaintActivities.notify_staff,
                notice,
                start_to_close_timeout=NOTICE_TIMEOUT,
                retry_policy=COUNTING_RETRY,
            )
        return report
