"""How long a workflow's steps may take and how they are retried: one policy per meaning.

Retry policies are not part of what replay checks, so a change here reaches
running workflows at their next step without a patch.
"""

from datetime import timedelta

from temporalio.common import RetryPolicy

# A step's activity must answer within this; the peers it calls (notifier, payments) have shorter timeouts.
ACTIVITY_TIMEOUT = timedelta(seconds=30)

# A case's step first tries three times within a few seconds as a local activity (workflows/steps.py, StepRunner).
QUICK_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3)

# Then, and for every step of the long-lived workflows, it is retried with backoff and no end: a peer that is
# down for hours is waited for (the UI shows the activity retrying), never given up on.
PATIENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
