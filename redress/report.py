"""`redress report`: how complaints are being handled, from Temporal visibility and workflow results.

Three steps, kept apart so each can be checked on its own:
- `collect` reads one `CaseRecord` per case: visibility (search attributes,
  start and close times) for every case, plus the `Outcome` result of each
  ended case (times, CSAT, reopens, compensation). Open cases count in volume
  and breach rate; the measured times, CSAT, reopen rate and compensation
  cover ended cases, whose results Temporal keeps. Nothing is queried from a
  running workflow, so a report needs no worker and puts no load on one.
- `summarize` turns records into figures (pure: no I/O, no clock).
- `render_*` write a terminal table, CSV, JSON or an HTML page with charts.

Scale: one visibility listing (1,000 cases per page) plus one result fetch per
ended case, 32 at a time. For more cases than a report should fetch each time,
`--export` writes the records as JSON Lines (no personal data) window by window,
and `--input` builds the report from such files; see README "Reports".
"""

from __future__ import annotations

import asyncio
import csv
import html
import io
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from redress import search_attributes as sa
from redress.contract import WORKFLOW_ID_PREFIX, WORKFLOW_TYPE, Outcome
from redress.trends import TrendReport

RESULT_FETCH_CONCURRENCY = 32
PERIODS = ("day", "week", "month")


class Payout(BaseModel):
    kind: str
    amount: Decimal
    currency: str


class CaseRecord(BaseModel):
    """One case as reports see it: routing, times and results, never personal data."""

    complaint_id: str
    started_at: datetime
    category: str | None = None
    channel: str | None = None
    severity: str | None = None
    queue: str | None = None
    result: str = Field(description="open, closed, withdrawn, refused, or failed/terminated/timed_out.")
    breached: bool = False
    first_response_seconds: float | None = None
    resolution_seconds: float | None = None
    resolved: bool = False
    reopened: bool = False
    csat: int | None = None
    payouts: list[Payout] = Field(default_factory=list)
    root_cause: str | None = Field(default=None, description="Named at resolve (the rules' root_causes).")
    first_callback_seconds: float | None = Field(
        default=None, description="From the acknowledgement to an agent's first response or question."
    )
    repeat: bool | None = Field(default=None, description="The customer had complained before within the window.")
    team_clocks: list[str] = Field(default_factory=list, description="Queues whose team clock (OLA) ran on it.")
    team_breaches: list[str] = Field(default_factory=list, description="Queues whose team clock was missed.")


# ------------------------------------------------------------------ collect


def visibility_query(
    since: datetime | None = None, until: datetime | None = None, task_queue: str | None = None
) -> str:
    parts = [f"WorkflowType = '{WORKFLOW_TYPE}'"]
    if since:
        parts.append(f"StartTime >= '{_rfc3339(since)}'")
    if until:
        parts.append(f"StartTime < '{_rfc3339(until)}'")
    if task_queue:
        parts.append(f"TaskQueue = '{task_queue}'")
    return " AND ".join(parts)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def collect(
    client: Client, since: datetime | None = None, until: datetime | None = None, task_queue: str | None = None
) -> list[CaseRecord]:
    """Every case started in [since, until): visibility for all, the result for each ended one."""
    listed = client.list_workflows(visibility_query(since, until, task_queue))
    # a case whose contact details were corrected went on in a new run: the one it left is not a case of its own
    executions = [e async for e in listed if e.status != WorkflowExecutionStatus.CONTINUED_AS_NEW]
    gate = asyncio.Semaphore(RESULT_FETCH_CONCURRENCY)

    async def record(execution: WorkflowExecution) -> CaseRecord:
        outcome = None
        if execution.status == WorkflowExecutionStatus.COMPLETED:
            async with gate:
                handle = client.get_workflow_handle(execution.id, run_id=execution.run_id, result_type=Outcome)
                outcome = await handle.result(follow_runs=False)
        return case_record(execution, outcome)

    return list(await asyncio.gather(*(record(e) for e in executions)))


def case_record(execution: WorkflowExecution, outcome: Outcome | None) -> CaseRecord:
    attributes = execution.typed_search_attributes
    status = execution.status
    if status == WorkflowExecutionStatus.RUNNING:
        result = "open"
    elif outcome is not None:
        result = outcome.stage.value
    else:
        result = status.name.lower() if status else "unknown"
    record = CaseRecord(
        complaint_id=execution.id.removeprefix(WORKFLOW_ID_PREFIX),
        started_at=execution.start_time,
        category=attributes.get(sa.CATEGORY),
        channel=attributes.get(sa.CHANNEL),
        severity=attributes.get(sa.SEVERITY),
        queue=attributes.get(sa.QUEUE),
        result=result,
        breached=bool(attributes.get(sa.BREACHED)),
    )
    if outcome is None:
        return record
    received = outcome.received_at or execution.start_time

    def seconds_since_received(moment: datetime | None) -> float | None:
        return max(0.0, (moment - received).total_seconds()) if moment else None

    record.category = outcome.category or record.category
    record.channel = outcome.channel.value if outcome.channel else record.channel
    record.severity = outcome.severity.value if outcome.severity else record.severity
    record.queue = outcome.queue or record.queue
    record.breached = record.breached or bool(outcome.breaches)
    record.first_response_seconds = seconds_since_received(outcome.first_response_at)
    record.resolution_seconds = seconds_since_received(outcome.resolved_at)
    record.resolved = outcome.resolved_at is not None or outcome.csat is not None
    record.reopened = outcome.reopen_count > 0
    record.csat = outcome.csat
    record.payouts = [Payout(kind=p.kind.value, amount=p.amount, currency=p.currency) for p in outcome.compensation]
    record.root_cause = outcome.root_cause
    if outcome.first_contact_at:  # from the acknowledgement; an answer before it went out counts as at once
        since = outcome.acknowledged_at or received
        record.first_callback_seconds = max(0.0, (outcome.first_contact_at - since).total_seconds())
    record.repeat = outcome.repeat_complaint
    record.team_clocks, record.team_breaches = outcome.team_clocks, outcome.team_breaches
    return record


def write_export(records: Iterable[CaseRecord], path: Path) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(record.model_dump_json() + "\n")
            count += 1
    return count


def read_exports(paths: Iterable[Path]) -> list[CaseRecord]:
    """Records from `--export` files; a case in two files (overlapping windows) counts once, the later file winning."""
    by_id: dict[str, CaseRecord] = {}
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = CaseRecord.model_validate_json(line)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not a case record: {str(error).splitlines()[0]}") from None
            by_id[record.complaint_id] = record
    return list(by_id.values())


# ------------------------------------------------------------------ summarize


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks (the spreadsheet PERCENTILE.INC); None without data."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(records: Sequence[CaseRecord]) -> dict[str, Any]:
    """The handling figures of a group of cases. Rates are fractions (0..1); times are seconds."""
    triaged = [r for r in records if r.severity]
    responses = [r.first_response_seconds for r in records if r.first_response_seconds is not None]
    resolutions = [r.resolution_seconds for r in records if r.resolution_seconds is not None]
    resolved = [r for r in records if r.resolved]
    callbacks = [r.first_callback_seconds for r in records if r.first_callback_seconds is not None]
    repeats = [r.repeat for r in records if r.repeat is not None]
    scores = [r.csat for r in records if r.csat is not None]
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for record in records:
        for payout in record.payouts:
            paid[payout.currency] += payout.amount
    return {
        "cases": len(records),
        "open": sum(1 for r in records if r.result == "open"),
        "first_response_median_s": percentile(responses, 0.5),
        "first_response_p90_s": percentile(responses, 0.9),
        "resolution_median_s": percentile(resolutions, 0.5),
        "resolution_p90_s": percentile(resolutions, 0.9),
        "first_callback_mean_s": round(statistics.fmean(callbacks), 1) if callbacks else None,
        "first_callback_max_s": round(max(callbacks), 1) if callbacks else None,
        "breach_rate": _rate(sum(1 for r in triaged if r.breached), len(triaged)),
        "resolution_rate": _rate(len(resolved), len(triaged)),
        "reopen_rate": _rate(sum(1 for r in resolved if r.reopened), len(resolved)),
        "repeat_rate": _rate(sum(repeats), len(repeats)),
        "csat_mean": round(statistics.fmean(scores), 3) if scores else None,
        "csat_satisfied": _rate(sum(1 for s in scores if s >= 4), len(scores)),
        "csat_responses": len(scores),
        "payouts": sum(len(r.payouts) for r in records),
        "compensation": {currency: str(amount) for currency, amount in sorted(paid.items())},
    }


def _cause(record: CaseRecord) -> str:
    """The root cause a case's resolution named; "(open)" for a running case (reports read results of ended cases
    only, so one resolved and awaiting its survey is here too), "(none)" for one that ended without."""
    return record.root_cause or ("(open)" if record.result == "open" else "(none)")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def period_of(moment: datetime, period: str) -> str:
    day = moment.astimezone(UTC).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")


def summarize(
    records: Sequence[CaseRecord],
    period: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    generated_at: datetime | None = None,
    trends: TrendReport | None = None,
) -> dict[str, Any]:
    """The whole report as plain data (what `--format json` prints and the other formats draw from).

    `trends`: the trend watch's last run, shown as it was (it counts days received, not these records)."""

    def grouped(key) -> list[dict[str, Any]]:
        groups: dict[str, list[CaseRecord]] = defaultdict(list)
        for record in records:
            groups[key(record)].append(record)
        return [{"group": name, **figures(groups[name])} for name in sorted(groups)]

    def volume(key: Callable[[CaseRecord], str]) -> dict[str, int]:
        counts = Counter(key(r) for r in records)
        return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

    def field(name: str) -> Callable[[CaseRecord], str]:
        return lambda r: getattr(r, name) or "(none)"

    return {
        "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "period": period,
        "overall": figures(records),
        "volume": {name: volume(field(name)) for name in ("category", "channel", "severity", "result")}
        | {"root_cause": volume(_cause)},
        "by_category": grouped(lambda r: r.category or "(none)"),
        "by_root_cause": grouped(_cause),
        "over_time": grouped(lambda r: period_of(r.started_at, period)),
        "team_clocks": team_clocks(records),
        "trends": trends.model_dump(mode="json") if trends else None,
    }


def team_clocks(records: Sequence[CaseRecord]) -> list[dict[str, Any]]:
    """Per team (queue), the ended cases its clock (OLA) ran on and how many it missed: the teams' own rates,
    apart from the customer's deadlines (`breach_rate`)."""
    ran: Counter[str] = Counter(team for r in records for team in set(r.team_clocks))
    missed: Counter[str] = Counter(team for r in records for team in set(r.team_breaches))
    return [
        {"team": team, "cases": ran[team], "breached": missed[team], "breach_rate": _rate(missed[team], ran[team])}
        for team in sorted(ran)
    ]


# ------------------------------------------------------------------ render

SECTIONS = ("by_category", "by_root_cause", "over_time")
FIGURE_COLUMNS = [
    ("cases", "cases"),
    ("open", "open"),
    ("first_response_median_s", "1st resp p50"),
    ("first_response_p90_s", "1st resp p90"),
    ("resolution_median_s", "resolve p50"),
    ("resolution_p90_s", "resolve p90"),
    ("first_callback_mean_s", "callback mean"),
    ("first_callback_max_s", "callback worst"),
    ("breach_rate", "breach"),
    ("resolution_rate", "resolved"),
    ("reopen_rate", "reopen"),
    ("repeat_rate", "repeat"),
    ("csat_mean", "CSAT"),
    ("csat_satisfied", "CSAT 4-5"),
    ("payouts", "payouts"),
    ("compensation", "compensation"),
]


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.1f}s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_s"):
        return human_duration(value)
    if key.endswith("_rate") or key == "csat_satisfied":
        return f"{value * 100:.1f}%"
    if key == "csat_mean":
        return f"{value:.2f}"
    if key == "compensation":
        return ", ".join(f"{amount} {currency}" for currency, amount in value.items()) or "-"
    return str(value)


def render_terminal(report: dict[str, Any]) -> None:
    from redress.terminal import print_table

    window = f"{report['since'] or 'the beginning'} to {report['until'] or 'now'}"
    overall = report["overall"]
    print_table(
        ["figure", "value"],
        [(label, _cell(key, overall[key])) for key, label in FIGURE_COLUMNS],
        title=f"Complaints from {window}",
        right=["value"],
    )
    for field, counts in report["volume"].items():
        print_table([field, "cases"], list(counts.items()), title=f"Volume by {field}", right=["cases"])
    labels = [label for _, label in FIGURE_COLUMNS]
    for section, title, head in (
        ("by_category", "By category", "category"),
        ("by_root_cause", "By root cause (open: not ended yet, so not read)", "root cause"),
        ("over_time", f"Over time (per {report['period']})", report["period"]),
    ):
        rows = [[group["group"], *(_cell(key, group[key]) for key, _ in FIGURE_COLUMNS)] for group in report[section]]
        print_table([head, *labels], rows, title=title, right=labels[:-1])
    if report["team_clocks"]:
        print_table(
            ["team", "cases", "missed", "OLA breach"],
            [
                (t["team"], t["cases"], t["breached"], _cell("breach_rate", t["breach_rate"]))
                for t in report["team_clocks"]
            ],
            title="Team clocks (OLA), ended cases",
            right=["cases", "missed", "OLA breach"],
        )
    if report.get("trends"):
        render_trends(report["trends"])


def render_trends(watch: dict[str, Any]) -> None:
    """The trend watch's run as tables: its warnings, then every series watched."""
    from redress.terminal import print_table

    if watch.get("newer_unfinished"):
        print(f"Note: {watch['newer_unfinished']} later run(s) of the trend watch did not complete; this is older.")
    if watch.get("note"):
        print(f"Trend watch of {watch['ran_at']}: {watch['note']}")
        return
    warned = [s for s in watch["series"] if s["signal"] != "usual"]
    title = f"Trend warnings for {watch['day']} (run {watch['ran_at']}, told: {watch['notify']})"
    print_table(
        ["series", "signal", "why"], [(f"{s['by']} {s['name']}", s["signal"], s["reason"]) for s in warned], title=title
    )
    print_table(
        ["series", "last days", "usual", "band", "forecast"],
        [
            (
                f"{s['by']} {s['name']}",
                " ".join(str(day) for day in s["days"][-7:]),
                f"{s['median']:g}",
                f"{s['low']:g}-{s['high']:g}",
                " ".join(f"{value:g}" for value in s["forecast"]) or "-",
            )
            for s in watch["series"]
        ],
        title=f"Series watched ({watch['not_watched']} below min_cases not shown); forecast: {watch['model']}",
    )


def render_csv(report: dict[str, Any]) -> str:
    """One wide table: `section` says which breakdown a row belongs to; times in seconds, rates as fractions."""
    keys = [key for key, _ in FIGURE_COLUMNS if key != "compensation"]
    currencies = sorted(
        {c for section in SECTIONS for g in report[section] for c in g["compensation"]}
        | set(report["overall"]["compensation"])
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "group", *keys, *(f"compensation_{c}" for c in currencies)])

    def row(section: str, group: str, values: dict[str, Any]) -> None:
        writer.writerow(
            [
                section,
                group,
                *("" if values.get(k) is None else values[k] for k in keys),
                *(values["compensation"].get(c, "") for c in currencies),
            ]
        )

    row("overall", "all", report["overall"])
    for field, counts in report["volume"].items():
        for group, count in counts.items():
            writer.writerow([f"volume_by_{field}", group, count] + [""] * (len(keys) - 1 + len(currencies)))
    for section in SECTIONS:
        for group in report[section]:
            row(section, group["group"], group)
    for team in report["team_clocks"]:  # cases: its clock ran; breach_rate: missed / ran
        values = {"cases": team["cases"], "breach_rate": team["breach_rate"], "compensation": {}}
        row("team_clock", team["team"], values)
    for series in (report.get("trends") or {}).get("series", []):  # cases: the last day's volume
        if series["signal"] != "usual":
            row(
                f"trend_{series['signal']}",
                f"{series['by']} {series['name']}",
                {"cases": series["days"][-1], "compensation": {}},
            )
    return out.getvalue()


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2)


# ------------------------------------------------------------------ HTML with charts

PALETTE = ["#3b6ea8", "#e0823d", "#5a9e6f", "#c44e52", "#8172b2", "#937860"]


def bar_chart(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]], value_text=lambda v: f"{v:g}"
) -> str:
    """A horizontal bar chart as inline SVG: one row per label, one bar per series."""
    row_height, bar_height, left, width = 8 + 16 * len(series), 14, 200, 340
    top = 24 + (16 if len(series) > 1 else 0)
    height = top + row_height * max(1, len(labels)) + 8
    peak = max([v for values in series.values() for v in values if v is not None] or [0]) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" width="{left + width + 90}" '
        f'height="{height}" viewBox="0 0 {left + width + 90} {height}">',
        f'<text x="0" y="14" class="title">{html.escape(title)}</text>',
    ]
    if len(series) > 1:
        for index, name in enumerate(series):
            x = left + index * 130
            parts.append(
                f'<rect x="{x}" y="24" width="10" height="10" fill="{PALETTE[index % len(PALETTE)]}"/>'
                f'<text x="{x + 14}" y="33">{html.escape(name)}</text>'
            )
    for row, label in enumerate(labels):
        y = top + row * row_height
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{html.escape(_short(label))}</text>')
        for index, (name, values) in enumerate(series.items()):
            value = values[row]
            bar_y = y + index * 16
            if value is None:
                parts.append(f'<text x="{left + 4}" y="{bar_y + 11}" class="none">no data</text>')
                continue
            bar = max(1.0, width * value / peak)
            parts.append(
                f'<rect class="bar" x="{left}" y="{bar_y}" width="{bar:.1f}" height="{bar_height}" '
                f'fill="{PALETTE[index % len(PALETTE)]}" data-value="{value}">'
                f"<title>{html.escape(label)} {html.escape(name)}: {html.escape(value_text(value))}</title>"
                f'</rect><text x="{left + bar + 4}" y="{bar_y + 11}">{html.escape(value_text(value))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _short(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


# Run by the browser after layout: marks each chart with how many bars it drew with a real size,
# so a headless browser check (and a person with dev tools) can tell the charts rendered.
_RENDER_CHECK = """
for (const figure of document.querySelectorAll('figure')) {
  const bars = [...figure.querySelectorAll('rect.bar')];
  const drawn = bars.filter(b => { const r = b.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
  figure.dataset.bars = bars.length;
  figure.dataset.drawn = drawn.length;
}
document.body.dataset.charts = document.querySelectorAll('figure svg.chart').length;
"""


def render_html(report: dict[str, Any]) -> str:
    categories = report["by_category"]
    periods = report["over_time"]
    names = [g["group"] for g in categories]
    minutes = human_duration

    def percent(value: float) -> str:
        return f"{value * 100:.1f}%"

    charts = [
        bar_chart(f"Volume by {field}", list(counts), {"cases": list(counts.values())})
        for field, counts in report["volume"].items()
    ]

    def times_by_category(title: str, series: dict[str, str]) -> str:
        """A time figure per category, one bar per statistic (series: its label -> the figure's key)."""
        return bar_chart(title, names, {label: [g[key] for g in categories] for label, key in series.items()}, minutes)

    charts += [
        times_by_category(
            "First response time by category",
            {"median": "first_response_median_s", "90th percentile": "first_response_p90_s"},
        ),
        times_by_category(
            "Resolution time by category", {"median": "resolution_median_s", "90th percentile": "resolution_p90_s"}
        ),
        times_by_category(
            "First callback by category (from the acknowledgement)",
            {"mean": "first_callback_mean_s", "worst": "first_callback_max_s"},
        ),
        bar_chart(
            "Deadline breach rate by category", names, {"breached": [g["breach_rate"] for g in categories]}, percent
        ),
        bar_chart("Reopen rate by category", names, {"reopened": [g["reopen_rate"] for g in categories]}, percent),
        bar_chart("CSAT (mean, 1-5) by category", names, {"CSAT": [g["csat_mean"] for g in categories]}),
    ]
    causes = report["by_root_cause"]
    cause_names = [g["group"] for g in causes]
    for label, groups, group_names in (
        ("category", categories, names),
        ("root cause", causes, cause_names),
    ):
        for currency in sorted({c for g in groups for c in g["compensation"]}):
            charts.append(
                bar_chart(
                    f"Compensation paid by {label} ({currency})",
                    group_names,
                    {currency: [float(g["compensation"].get(currency, 0)) for g in groups]},
                    lambda v: f"{v:,.2f}",
                )
            )
    charts += [
        bar_chart(
            f"Complaints per {report['period']}",
            [g["group"] for g in periods],
            {"cases": [g["cases"] for g in periods]},
        ),
        bar_chart(
            f"Breach rate per {report['period']}",
            [g["group"] for g in periods],
            {"breached": [g["breach_rate"] for g in periods]},
            percent,
        ),
        bar_chart(
            f"CSAT per {report['period']}", [g["group"] for g in periods], {"CSAT": [g["csat_mean"] for g in periods]}
        ),
    ]
    if report["team_clocks"]:
        charts.append(
            bar_chart(
                "Team clock (OLA) breach rate by team",
                [t["team"] for t in report["team_clocks"]],
                {"missed": [t["breach_rate"] for t in report["team_clocks"]]},
                percent,
            )
        )
    labels = [label for _, label in FIGURE_COLUMNS]

    def table(rows: list[dict[str, Any]], head: str) -> str:
        header = "".join(f"<th>{html.escape(h)}</th>" for h in [head, *labels])
        body = "".join(
            "<tr>"
            + f"<td>{html.escape(g['group'])}</td>"
            + "".join(f"<td>{html.escape(_cell(k, g[k]))}</td>" for k, _ in FIGURE_COLUMNS)
            + "</tr>"
            for g in rows
        )
        return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"

    overall = report["overall"]
    summary = "".join(
        f"<div class=card><b>{html.escape(_cell(k, overall[k]))}</b><span>{html.escape(label)}</span></div>"
        for k, label in FIGURE_COLUMNS
        if k not in ("open", "payouts")
    )
    window = f"{report['since'] or 'the beginning'} to {report['until'] or 'now'}"
    body = f"""<h1>Complaint handling</h1>
<p>Cases started from {html.escape(window)}; generated {html.escape(report["generated_at"])}.
Times run from when the customer complained; time, CSAT, reopen and compensation figures cover ended cases.</p>
<div class=cards>{summary}</div>
<div class=charts>{"".join(f"<figure>{chart}</figure>" for chart in charts)}</div>
<h2>By category</h2>{table(categories, "category")}
<h2>By root cause</h2><p>Named when the case was resolved; "(open)": running cases, whose results a report
does not read yet (one resolved and awaiting its survey among them).</p>{table(causes, "root cause")}
<h2>Over time (per {html.escape(report["period"])})</h2>{table(periods, report["period"])}
{trends_html(report.get("trends"))}"""
    return html_page("Redress report", body)


def trends_html(watch: dict[str, Any] | None) -> str:
    """The trend watch's last run: each series' last days, usual band and forecast, warnings first."""
    if not watch:
        return ""
    stale = watch.get("newer_unfinished", 0)
    older = f"<p>{stale} later run(s) did not complete: this is older.</p>" if stale else ""
    if watch.get("note"):
        return f"<h2>Trend watch</h2>{older}<p>{html.escape(watch['note'])}</p>"
    ordered = sorted(watch["series"], key=lambda s: (s["signal"] == "usual", s["by"], s["name"]))
    rows = "".join(
        f"<tr class={html.escape(s['signal'])}><td>{html.escape(s['by'] + ' ' + s['name'])}</td>"
        f"<td>{html.escape(' '.join(str(d) for d in s['days'][-7:]))}</td><td>{s['median']:g}</td>"
        f"<td>{s['low']:g}-{s['high']:g}</td><td>{html.escape(' '.join(f'{v:g}' for v in s['forecast']) or '-')}</td>"
        f"<td>{html.escape(s['signal'])}</td><td>{html.escape(s['reason'] or '')}</td></tr>"
        for s in ordered
    )
    return (
        f"<h2>Trend watch for {html.escape(watch['day'])}</h2>{older}"
        f"<p>Run {html.escape(watch['ran_at'])}; warnings go to "
        f"{html.escape(watch['notify'] or '-')}; forecast: {html.escape(watch['model'])}.</p><table id=trends>"
        "<thead><tr><th>series</th><th>last 7 days</th><th>usual</th><th>band</th><th>forecast</th><th>signal</th>"
        f"<th>why</th></tr></thead><tbody>{rows}</tbody></table>"
    )


PAGE_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 110px; }
.card b { display: block; font-size: 18px; } .card span { color: #666; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; margin: 24px 0; }
figure { margin: 0; } svg text { font-size: 12px; fill: #333; } svg text.title { font-weight: 600; }
svg text.none { fill: #999; }
table { border-collapse: collapse; margin: 12px 0 24px; }
th, td { border-bottom: 1px solid #eee; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""


def html_page(title: str, body: str) -> str:
    """A self-contained page in the report's style (the rules lab's page uses it too), with the render check."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{PAGE_STYLE}</style></head>
<body>
{body}
<script>{_RENDER_CHECK}</script>
</body></html>
"""


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`7d`, `24h`, `30m` back from now, or an ISO date/time (UTC when no zone is given)."""
    now = now or datetime.now(UTC)
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    if text and text[-1] in units and text[:-1].isdigit():
        try:
            return now - timedelta(**{units[text[-1]]: int(text[:-1])})
        except OverflowError:  # further back than dates go
            raise ValueError(f"{text!r}: too far back; give at most a few years") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}: give a span like 7d, 24h, 30m or an ISO date like 2026-11-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
