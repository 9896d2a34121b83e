"""The trend watch's forecast, run as a child process: `python -m activities.forecast` (JSON in, JSON out).

The model is statsmodels' exponential smoothing with an additive, damped trend
(Holt's damped method, ETS(A,Ad,N)), fitted per series by maximum likelihood:
- a well-kept implementation of the textbook model (Hyndman and Athanasopoulos,
  "Forecasting: Principles and Practice", ch. 8), not our own arithmetic;
- simple enough for a few weeks of daily counts: a level and a trend, no more;
- the damping makes a rise level off instead of running on for ever, so a short
  burst does not forecast a flood;
- no weekly season: that needs several clean weeks per category, and complaint
  volume moves with incidents more than with weekdays.

Why a child process: statsmodels brings numpy, scipy and pandas, about 130 MB
and 3 s to import. A worker holding 10,000 open cases (bench/) cannot spare that
for a job that runs once a day; the child takes it and gives it back.

Input: {"horizon": 3, "series": [[2, 3, 2, ...], ...]}; output: one list of `horizon`
numbers per series (never below 0), or null where the model could not be fitted.
"""

from __future__ import annotations

import json
import math
import sys
import warnings

MODEL = "exponential smoothing, additive damped trend (statsmodels ETS(A,Ad,N))"
MIN_DAYS = 7  # fewer points than this and the fit means nothing


def forecast(series: list[float], horizon: int) -> list[float] | None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    if len(series) < MIN_DAYS:
        return None
    if max(series) == min(series):  # a flat series: the model would divide by its zero variance
        return [float(series[-1])] * horizon
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes on short series: the fit is still the best found
        try:
            model = ExponentialSmoothing(
                [float(value) for value in series],
                trend="add",
                damped_trend=True,
                initialization_method="estimated",
            )
            predicted = model.fit().forecast(horizon)
        except (ValueError, ArithmeticError, IndexError):
            return None
    values = [float(value) for value in predicted]
    if not all(math.isfinite(value) for value in values):
        return None  # a fit that diverged says nothing
    return [max(0.0, round(value, 2)) for value in values]


def main() -> None:
    request = json.load(sys.stdin)
    horizon = int(request["horizon"])
    json.dump([forecast(series, horizon) for series in request["series"]], sys.stdout)


if __name__ == "__main__":
    main()
