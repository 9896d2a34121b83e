"""The 268 real complaints of the CFPB sample (tests/data), as Redress complaints.

Public data from the US Consumer Financial Protection Bureau's complaint
database: no personal data beyond a state and a partial ZIP code, which we
leave out. Each row keeps its product, the company's response and whether the
consumer disputed it, so a replay can carry each complaint the way the company
did (see test_report.py).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

CSV = Path(__file__).resolve().parents[1] / "data" / "cfpb_complaints_sample.csv"

# CFPB's "Submitted via" to our channels: fax is paper too.
CHANNELS = {
    "Web": "web",
    "Referral": "referral",
    "Phone": "phone",
    "Postal mail": "letter",
    "Fax": "letter",
    "Email": "email",
}


@dataclass(frozen=True)
class CfpbComplaint:
    complaint_id: str
    product: str
    channel: str
    text: str
    company_response: str
    timely: bool
    disputed: bool
    tags: tuple[str, ...]

    def as_input(self, received_at: datetime | None = None) -> dict:
        return {
            "complaint_id": self.complaint_id,
            "customer": {"id": f"cfpb-{self.complaint_id}", "language": "en"},
            "channel": self.channel,
            "received_at": (received_at or datetime.now(UTC)).isoformat(),
            "text": self.text,
            "tags": list(self.tags),
            "metadata": {"product": self.product, "company_response": self.company_response},
        }


def category_of(product: str) -> str:
    """A rule-file identifier for a CFPB product ("Debt collection" -> debt_collection)."""
    return re.sub(r"[^a-z0-9]+", "_", product.lower()).strip("_")[:40].rstrip("_")


def load(path: Path = CSV) -> list[CfpbComplaint]:
    with path.open(encoding="utf-8", newline="") as source:
        rows = list(csv.DictReader(source))
    complaints = []
    for row in rows:
        narrative = row["Consumer complaint narrative"].strip()
        summary = ": ".join(part for part in (row["Issue"], row["Sub-issue"]) if part)
        complaints.append(
            CfpbComplaint(
                complaint_id=f"CFPB-{row['Complaint ID']}",
                product=row["Product"],
                channel=CHANNELS[row["Submitted via"]],
                text=(narrative or summary)[:20_000],
                company_response=row["Company response to consumer"],
                timely=row["Timely response?"] == "Yes",
                disputed=row["Consumer disputed?"] == "Yes",
                tags=tuple(t.strip().lower().replace(" ", "_") for t in row["Tags"].split(",") if t.strip()),
            )
        )
    return complaints


def routing_yaml(complaints: list[CfpbComplaint]) -> str:
    """Triage by product: one rule per product, each setting its category and queue.

    Untimely cases are tagged `untimely` by the replay and made major, whose
    first-response deadline the replay lets pass.
    """
    lines = [
        "defaults: {category: other, queue: general, severity: general}",
        "rules:",
        "  - name: untimely-is-major",
        '    when: tags.exists(t, t == "untimely")',
        "    set: {severity: major}",
    ]
    for product in sorted({c.product for c in complaints}):
        category = category_of(product)
        lines += [
            f"  - name: product-{category}".replace("_", "-"),
            f"    when: metadata.product == {product!r}".replace("'", '"'),
            f"    set: {{category: {category}, queue: {category}}}",
        ]
    return "\n".join(lines) + "\n"
