"""The rules lab: how a rule set treats a corpus of complaints, before it is published.

`redress rules lab CORPUS [--rules DIR] [--labels MAP.yaml] [--text-column C] [--label-column C]`.
The corpus is CSV (a header row with `text`, optionally `channel`, `requested_remedy`,
`language`, `label`; other columns are ignored) or JSON Lines (one complaint object per line,
the same fields, or any field of a complaint). A corpus with its own column names (the CFPB's
"Consumer complaint narrative" and "Product") says which they are; rows with no text are
skipped and counted. Each complaint is triaged with the rules exactly as the triage activity
would, with no server.

- *coverage*: the share of complaints per category, severity and queue; the share left to
  the default category; the commonest words of those (what an admin might add as keywords);
- *accuracy*, when complaints carry a `label`: the share whose category equals the label
  (mapped through `--labels`, a YAML mapping from the corpus' labels to our categories,
  when the corpus speaks another taxonomy), and a confusion table per category.

A line that is not a complaint is refused with its line number, and the rest is read.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from activities.io import TriageFacts
from activities.rules.admin_tests import EXAMPLE_DEFAULTS
from activities.rules.engine import triage
from activities.rules.loader import RuleSet
from redress.contract import ComplaintInput, describe_validation_error

MAX_COMPLAINTS = 100_000
MISS_TEXT = 240  # characters of a missed complaint's text shown (enough to see why)
ENGLISH_WORD = re.compile(r"[a-z][a-z']{2,}")
HAN = re.compile(r"[\u4e00-\u9fff]+")
# words too common to suggest as keywords
STOP = frozenset(
    re.findall(
        r"\S+",
        "the and for that this with was were have has had not but you your are our they them their from what "
        "when which would could should there been about into than then also just very can did does don't didn't "
        "i'm it's out get got one all any every time keeps "
        "我们 你们 他们 这个 那个 就是 还是 没有 一个 什么 因为 所以 但是 如果 已经 可以 不是 现在",
    )
)


@dataclass
class LabComplaint:
    line: int
    complaint: ComplaintInput
    label: str | None


@dataclass(frozen=True)
class Miss:
    """A labelled complaint triaged as another category: what an admin reads to improve the rules."""

    line: int
    expected: str
    got: str
    why: str  # the triage's own account (decided_by with evidence)
    text: str

    def as_json(self) -> dict[str, Any]:
        return {"line": self.line, "expected": self.expected, "got": self.got, "why": self.why, "text": self.text}


@dataclass
class LabReport:
    rule_version: str
    complaints: int
    refused: list[str] = field(default_factory=list)  # "line N: why"
    without_text: int = 0  # rows skipped: nothing said
    categories: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    queues: Counter[str] = field(default_factory=Counter)
    default_category: str = "other"
    left_to_default: int = 0
    default_words: list[tuple[str, int]] = field(default_factory=list)
    labelled: int = 0
    correct: int = 0
    confusion: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # expected -> got
    misses: list[Miss] = field(default_factory=list)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def as_json(self) -> dict[str, Any]:
        def shares(counter: Counter[str]) -> dict[str, float]:
            return {key: round(count / self.complaints, 4) for key, count in counter.most_common()}

        return {
            "rule_version": self.rule_version,
            "complaints": self.complaints,
            "refused": self.refused,
            "without_text": self.without_text,
            "coverage": {
                "category": shares(self.categories),
                "severity": shares(self.severities),
                "queue": shares(self.queues),
                "left_to_default": {
                    "category": self.default_category,
                    "share": round(self.left_to_default / self.complaints, 4) if self.complaints else 0.0,
                    "commonest_words": [{"word": w, "complaints": n} for w, n in self.default_words],
                },
            },
            "accuracy": None
            if self.accuracy is None
            else {
                "labelled": self.labelled,
                "correct": self.correct,
                "share": round(self.accuracy, 4),
                "confusion": {expected: dict(got) for expected, got in sorted(self.confusion.items())},
                "misses": [miss.as_json() for miss in self.misses],
            },
        }


@dataclass(frozen=True)
class Columns:
    """Where a corpus keeps a complaint's text and label (the CFPB's: "Consumer complaint narrative", "Product")."""

    text: str = "text"
    label: str = "label"


# the fields a CSV row may fill besides the text and label; a CSV's other columns are not the complaint's
CSV_FIELDS = ("channel", "requested_remedy", "language")


def read_corpus(path: Path, columns: Columns = Columns()) -> tuple[list[LabComplaint], list[str], int]:
    """Complaints from CSV or JSON Lines, the lines refused (with why), and how many had no text (skipped)."""
    content = path.read_text(encoding="utf-8-sig")
    rows: list[tuple[int, dict[str, Any]]] = []
    refused: list[str] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):  # nested deeper than Python reads is no complaint either
                refused.append(f"line {number}: not JSON")
                continue
            if not isinstance(row, dict):
                refused.append(f"line {number}: not a JSON object")
                continue
            rows.append((number, _renamed(row, columns)))
    else:
        reader = csv.DictReader(io.StringIO(content))
        try:
            if not reader.fieldnames or columns.text not in reader.fieldnames:
                return [], [f"line 1: a CSV corpus needs a header row with a `{columns.text}` column"], 0
            for row in reader:
                wanted = {columns.text: "text", columns.label: "label", **{name: name for name in CSV_FIELDS}}
                rows.append((reader.line_num, {wanted[k]: v for k, v in row.items() if k in wanted and v}))
        except csv.Error as error:  # what the csv module cannot read ends the corpus there, said with its line
            refused.append(f"line {reader.line_num + 1}: not CSV ({error})")  # the record after the last read
    complaints: list[LabComplaint] = []
    without_text = 0
    for number, row in rows[:MAX_COMPLAINTS]:
        label = row.pop("label", None)
        if row.get("text") in (None, ""):
            without_text += 1  # a corpus row with nothing said (most CFPB rows: no narrative) is not a complaint
            continue
        data = {**EXAMPLE_DEFAULTS, "complaint_id": f"LAB-{number}", **row}
        try:
            complaints.append(LabComplaint(number, ComplaintInput.model_validate(data), str(label) if label else None))
        except ValidationError as invalid:
            refused.append(f"line {number}: " + "; ".join(describe_validation_error(invalid))[:300])
    if len(rows) > MAX_COMPLAINTS:
        refused.append(f"only the first {MAX_COMPLAINTS} complaints were read")
    return complaints, refused, without_text


def _renamed(row: dict[str, Any], columns: Columns) -> dict[str, Any]:
    """A JSON line with the corpus' own names for the text and label given ours."""
    renamed = dict(row)
    for ours, theirs in (("text", columns.text), ("label", columns.label)):
        if theirs != ours and theirs in renamed:
            renamed[ours] = renamed.pop(theirs)
    return renamed


def run_lab(
    rule_set: RuleSet,
    complaints: list[LabComplaint],
    refused: list[str],
    labels: dict[str, str] | None = None,
    without_text: int = 0,
) -> LabReport:
    """Triage every complaint; count coverage and, for labelled ones, accuracy."""
    default = rule_set.document.defaults.category
    report = LabReport(
        rule_set.version, len(complaints), refused=refused, default_category=default, without_text=without_text
    )
    words: Counter[str] = Counter()
    for item in complaints:
        result = triage(rule_set, TriageFacts.of(item.complaint), explain=False)
        report.categories[result.category] += 1
        report.severities[result.severity.value] += 1
        report.queues[result.queue] += 1
        if result.category == default:
            report.left_to_default += 1
            words.update(set(words_of(item.complaint.text)))
        if item.label is not None:
            expected = (labels or {}).get(item.label, item.label)
            report.labelled += 1
            report.correct += expected == result.category
            report.confusion[expected][result.category] += 1
            if expected != result.category:
                why = result.decided_by or ", ".join(result.fired) or "no rule fired"
                report.misses.append(Miss(item.line, expected, result.category, why, item.complaint.text[:MISS_TEXT]))
    report.default_words = [(w, n) for w, n in words.most_common(20) if n > 1]
    return report


def words_of(text: str) -> list[str]:
    """English words and Chinese words (jieba, as pysenti uses it), without the commonest function words."""
    folded = text.casefold()
    found = [w for w in ENGLISH_WORD.findall(folded) if w not in STOP]
    runs = HAN.findall(folded)
    if runs:
        import jieba  # installed with pysenti; loaded only when a text has Chinese

        jieba.setLogLevel(60)  # its dictionary-loading chatter is not the lab's output
        for run in runs:
            found.extend(w for w in jieba.lcut(run) if len(w) >= 2 and w not in STOP)
    return found
