"""The rules lab as an HTML page (`redress rules lab ... --html FILE`), in the report's style.

What an admin takes to a meeting before publishing a rule change: how the rules
spread the complaints over categories, severities and queues, how often they agree
with the labels (per category), and, with `--against` or `--open`, what the change
would do, side by side. Self-contained (inline SVG, no script from anywhere).

A corpus is the admin's own file, so its lines are quoted; running cases are
customers' complaints, so the page names them by id and stage only, never their text.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence

from activities.rules.lab import LabReport
from activities.rules.whatif import ASPECTS, WhatIf
from redress.report import bar_chart, html_page

NOW, CANDIDATE = "in force", "candidate"  # the two series of every chart with --against or --open
MISSES_SHOWN = 200
CHANGES_SHOWN = 500


def render_lab_page(
    source: str, report: LabReport | None, other: LabReport | None, what_if: WhatIf | None, versions: str = ""
) -> str:
    """`versions` says which rules are "in force" and which the "candidate" (the charts' two series)."""
    cards: list[tuple[str, str]] = []
    charts: list[str] = []
    sections: list[str] = []
    percent = _percent
    if report is not None:
        cards.append((str(report.complaints), "complaints"))
        if report.accuracy is not None:
            change = f" → {percent(other.accuracy)}" if other is not None and other.accuracy is not None else ""
            cards.append((percent(report.accuracy) + change, "agree with the labels"))
        left = report.left_to_default / max(report.complaints, 1)
        cards.append((percent(left), f"left to {report.default_category}"))
        for title, field in (("Category", "categories"), ("Severity", "severities"), ("Queue", "queues")):
            series = {NOW: getattr(report, field)}
            if other is not None:
                series[CANDIDATE] = getattr(other, field)
            charts.append(_shares(f"{title} (share of complaints)", series, report.complaints))
        if report.accuracy is not None:
            charts.append(_recall(report, other))
            sections.append(_confusion(report))
            sections.append(_misses(report))
    if what_if is not None:
        cards.append((f"{len(what_if.changes)} of {what_if.compared}", "would change"))
        charts.append(
            bar_chart(
                "Complaints that would change, by aspect",
                list(ASPECTS),
                {"changed": [what_if.by_aspect.get(name, 0) for name in ASPECTS]},
            )
        )
        if report is None:  # the running cases: their categories now and after a retriage
            sides = {NOW: what_if.categories["before"], CANDIDATE: what_if.categories["after"]}
            charts.append(_shares("Category (share of cases)", sides, what_if.compared))
        if what_if.category_moves:
            moves = what_if.category_moves.most_common(20)
            charts.append(
                bar_chart(
                    "Category moves", [f"{a} → {b}" for (a, b), _ in moves], {"complaints": [n for _, n in moves]}
                )
            )
        sections.append(_changes(what_if, quote=report is not None))
    summary = "".join(
        f"<div class=card><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>" for value, label in cards
    )
    body = (
        f"<h1>Rules lab</h1><p>{html.escape(source)}: triaged with the rules and no workflow started. "
        f"{html.escape(versions)}</p>"
        f"<div class=cards>{summary}</div>"
        f"<div class=charts>{''.join(f'<figure>{chart}</figure>' for chart in charts)}</div>" + "".join(sections)
    )
    return html_page("Redress rules lab", body)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _shares(title: str, series: dict[str, Counter[str]], total: int) -> str:
    names = sorted({name for counts in series.values() for name in counts}, key=lambda n: -sum(
        counts.get(n, 0) for counts in series.values()
    ))  # fmt: skip
    whole = max(total, 1)
    return bar_chart(title, names, {side: [counts.get(n, 0) / whole for n in names] for side, counts in series.items()},
                     _percent)  # fmt: skip


def _recall(report: LabReport, other: LabReport | None) -> str:
    """Per labelled category, the share the rules got right (what a supervisor would have said)."""
    categories = sorted(report.confusion)
    series: dict[str, Sequence[float | None]] = {
        f"rules {report.rule_version}": [_right(report, c) for c in categories]
    }
    if other is not None and other.accuracy is not None:
        series[f"rules {other.rule_version}"] = [_right(other, c) for c in categories]
    return bar_chart("Right, per labelled category", categories, series, _percent)


def _right(report: LabReport, category: str) -> float | None:
    row = report.confusion.get(category)
    return row.get(category, 0) / sum(row.values()) if row else None


def _table(head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _confusion(report: LabReport) -> str:
    got = sorted({c for row in report.confusion.values() for c in row})
    rows = [
        [expected, *(str(report.confusion[expected].get(c, "")) for c in got)] for expected in sorted(report.confusion)
    ]
    return f"<h2>Labelled as (rows) and triaged as (columns)</h2>{_table(['label', *got], rows)}"


def _misses(report: LabReport) -> str:
    rows = [[str(m.line), m.expected, m.got, m.why, m.text] for m in report.misses[:MISSES_SHOWN]]
    more = f"<p>and {len(report.misses) - MISSES_SHOWN} more</p>" if len(report.misses) > MISSES_SHOWN else ""
    return f"<h2>Decided otherwise than labelled</h2>{_table(['line', 'label', 'triaged', 'why', 'text'], rows)}{more}"


def _changes(what_if: WhatIf, quote: bool) -> str:
    rows = []
    for change in what_if.changes[:CHANGES_SHOWN]:
        for name in change.aspects:
            rows.append([change.ref, name, change.before.aspect(name), change.after.aspect(name), change.note])
    note = "text" if quote else "stage"
    more = len(what_if.changes) - CHANGES_SHOWN
    skipped = "".join(f"<li>{html.escape(s)}</li>" for s in what_if.skipped)
    return (
        f"<h2>What would change</h2>{_table(['complaint', 'aspect', 'now', 'would be', note], rows)}"
        + (f"<p>and {more} more complaints</p>" if more > 0 else "")
        + (f"<h2>Not compared</h2><ul>{skipped}</ul>" if skipped else "")
    )
