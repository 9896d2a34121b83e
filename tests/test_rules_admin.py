"""Rules as a product for admins: explain a decision, and unit-test the rules in YAML."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

from tests.helpers.processes import ROOT


def redress(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "redress", *args], capture_output=True, text=True, cwd=ROOT)


def test_explain_shows_the_outcome_and_why_each_rule_fired_or_not(tmp_path):
    path = tmp_path / "complaint.json"
    path.write_text(
        json.dumps({"text": "订单重复扣费，我要退款", "channel": "social", "order": {"id": "o", "value": 90}}),
        encoding="utf-8",
    )
    run = redress("rules", "explain", str(path))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "billing / urgent / queue billing" in lines[0]
    assert "  FIRED  billing-error: keyword '重复扣费' found" in lines
    assert "  FIRED  refund-request: keyword '退款' found" in lines
    assert any(line.startswith("    -    privacy-to-legal: no keyword found") for line in lines)
    assert any(
        'public-complaint-is-urgent: condition `channel == "social" || channel == "third_party"` is true' in line
        for line in lines
    )
    assert any(
        "high-value-order-is-urgent: condition `order.present && order.value >= 5000.0` is false" in line
        for line in lines
    )
    assert (
        "  offer refund 90.00 CNY (billing-error-refund): needs specialist or above (or the signature of a "
        "proposer whose authority covers it)"
    ) in lines
    assert "  offer apology (apologise-always): no approval needed" in lines
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
        '    complaint: {text: "the parcel arrived damaged"}\n'
        "    expect: {queue: billing, fired: [billing-error], not_fired: [damaged-in-transit]}\n",
        encoding="utf-8",
    )
    run = redress("rules", "test", str(rules))
    assert run.returncode == 1
    assert "FAIL mine.yaml: damaged goes to billing (wrong on purpose)" in run.stdout
    assert "queue: expected 'billing', got 'logistics'" in run.stdout
    assert "fired: expected 'billing-error' to fire; it did not (no keyword found in the text)" in run.stdout
    assert "not_fired: expected 'damaged-in-transit' not to fire; it did (keyword 'damaged' found)" in run.stdout
    assert re.search(r"rules test: \d+ passed, 1 failed", run.stdout)


def test_lint_warns_with_positions_but_does_not_refuse(tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    with (rules / "routing.yaml").open("a", encoding="utf-8") as out:
        out.write(
            "  - name: billing-again\n"
            "    keywords: [扣款, overcharged]\n"
            "    set: {category: billing, queue: billing}\n"
            "  - name: fax-is-urgent\n"
            '    when: channel == "fax"\n'
            "    set: {severity: urgent}\n"
            "  - name: never\n"
            "    when: 1 > 2\n"
            "    set: {severity: major}\n"
            "  - name: twice\n"
            "    keywords: [lost, LOST]\n"
            "    set: {category: delivery}\n"
        )
    run = redress("rules", "check", str(rules))
    assert run.returncode == 0 and "rules OK" in run.stdout
    warnings = [line for line in run.stderr.splitlines() if line.startswith("warning: ")]
    lines = (rules / "routing.yaml").read_text(encoding="utf-8").splitlines()
    line_of = {text.strip(): number for number, text in enumerate(lines, start=1)}

    def expect(fragment: str, line_text: str) -> None:
        line = line_of[line_text]
        assert any(f"routing.yaml:{line}:" in w and fragment in w for w in warnings), (fragment, warnings)

    expect("shadowed by rule 'billing-error'", "- name: billing-again")
    expect("keyword '扣款' is also in rule 'billing-error'", "keywords: [扣款, overcharged]")
    expect("channel is never 'fax'", 'when: channel == "fax"')
    expect("the condition is always false", "when: 1 > 2")
    expect("keyword 'LOST' is listed twice", "keywords: [lost, LOST]")
    shipped = redress("rules", "check", "rules")
    assert "warning" not in shipped.stderr
