"""Rules as a product for admins: explain a decision, and unit-test the rules in YAML."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.conftest import ROOT


def redress(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_explain_shows_the_outcome_and_why_each_rule_fired_or_not(tmp_path):
    path = tmp_path / "complaint.json"
    path.write_text(json.dumps({"text": "我要退款", "channel": "social", "order": {"id": "o", "value": 90}}),
                    encoding="utf-8")
    run = redress("rules", "explain", str(path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "billing / urgent / queue billing" in lines[0]
    assert "  FIRED  refund-to-billing: keyword '退款' found" in lines
    assert any(line.startswith("    -    privacy-to-legal: no keyword found") for line in lines)
    assert any("public-complaint-is-urgent: condition `channel == \"social\" || channel == \"third_party\"` is true"
               in line for line in lines)
    assert any("high-value-order-is-urgent: condition `order.present && order.value >= 5000.0` is false" in line
               for line in lines)
    assert any(line.startswith("  offer refund 90.00 CNY") for line in lines)
    assert not list(tmp_path.glob("*.db"))  # a dry run: no workflow, no server


def test_explain_refuses_an_invalid_complaint_naming_the_field(tmp_path):
    path = tmp_path / "complaint.json"
    path.write_text(json.dumps({"text": "hi", "channel": "fax"}), encoding="utf-8")
    run = redress("rules", "explain", str(path))
    assert run.returncode == 2 and "complaint.channel" in run.stderr


def test_the_shipped_rule_tests_pass():
    run = redress("rules", "test", "rules")
    assert run.returncode == 0, run.stdout
    assert "0 failed" in run.stdout and "FAIL" not in run.stdout


def test_a_failing_admin_test_shows_the_difference(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "tests" / "mine.yaml").write_text(
        "cases:\n"
        "  - name: damaged goes to billing (wrong on purpose)\n"
        "    complaint: {text: \"the parcel arrived damaged\"}\n"
        "    expect: {queue: billing, fired: [refund-to-billing], not_fired: [damaged-to-logistics]}\n",
        encoding="utf-8")
    run = redress("rules", "test", str(rules))
    assert run.returncode == 1
    assert "FAIL mine.yaml: damaged goes to billing (wrong on purpose)" in run.stdout
    assert "queue: expected 'billing', got 'logistics'" in run.stdout
    assert "fired: expected 'refund-to-billing' to fire; it did not (no keyword found in the text)" in run.stdout
    assert "not_fired: expected 'damaged-to-logistics' not to fire; it did (keyword 'damaged' found)" in run.stdout
    assert "8 passed, 1 failed" in run.stdout
