"""The shipped rules with second-long deadlines, and a signing key for each approver they list."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from redress import signatures

ROOT = Path(__file__).resolve().parents[2]

# One signing key per approver in the shipped directory, made once per process (in memory only).
APPROVER_KEYS = {}
_PUBLIC_KEYS = {}
for _name in ("li.na", "sam.taylor", "wang.fang", "alex.morgan", "zhang.wei", "chen.jing", "liu.yang"):
    _pem, _PUBLIC_KEYS[_name] = signatures.new_key_pair()
    APPROVER_KEYS[_name] = signatures.load_private_key(_pem)


def with_public_keys(rules: Path) -> None:
    """Give every approver in rules/approval.yaml the public half of its test key, in place of any key the
    checkout holds: the README's quick start registers a real one for wang.fang (`keys new --register`)."""
    path = rules / "approval.yaml"
    text = path.read_text(encoding="utf-8")
    for name, public_key in _PUBLIC_KEYS.items():
        text, found = re.subn(
            rf"^(  {re.escape(name)}: {{role: [a-z_]+)(?:, public_key: [^,}}]+)?",
            rf"\1, public_key: {public_key}",
            text,
            flags=re.MULTILINE,
        )
        assert found == 1, f"{name} is not listed as `{name}: {{role: ...}}` in {path}"
    path.write_text(text, encoding="utf-8")


def write_rules(
    directory: Path,
    first_response: str = "20s",
    resolution: str = "40s",
    survey_window: str = "20s",
    major_first_response: str | None = None,
    tiers_yaml: str | None = None,
    agent_desks: bool = False,
) -> Path:
    """The shipped rules with second-long deadlines (the same for every tier unless told, or `tiers_yaml`).

    Agent desks are per queue and so shared by every test on the session's server; tests that are not
    about them run without (`agent_desks=True` keeps the shipped section).
    """
    if directory.exists():
        shutil.rmtree(directory)
    shutil.copytree(ROOT / "rules", directory, ignore=shutil.ignore_patterns("tests"))
    with_public_keys(directory)
    if not agent_desks:
        across = directory / "across_cases.yaml"
        text = across.read_text(encoding="utf-8")
        across.write_text(text.split("\n# Agent load:", 1)[0] + "\n", encoding="utf-8")
    if tiers_yaml:
        (directory / "tiers.yaml").write_text(tiers_yaml, encoding="utf-8")
        return directory
    tiers = "tiers:\n"
    for tier, role in (("general", "team_lead"), ("urgent", "cs_manager"), ("major", "director")):
        first = major_first_response if tier == "major" and major_first_response else first_response
        tiers += f"  {tier}: {{first_response: {first}, resolution: {resolution}, escalate_to: {role}}}\n"
    tiers += f"follow_up: {{survey_window: {survey_window}, reopen_below: 3}}\n"
    (directory / "tiers.yaml").write_text(tiers, encoding="utf-8")
    return directory
