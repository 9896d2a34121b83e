"""Running `redress rules lab` from tests: as a user does (a subprocess) or, for quick checks, in the test's process."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.processes import ROOT

DATA = ROOT / "tests" / "data"


def lab_here(capsys, *args: str) -> tuple[int, str, str]:
    """`redress rules lab ARGS` in this process (its exit code, stdout, stderr): the checks that need no new one."""
    from redress.cli import build_parser

    parsed = build_parser().parse_args(list(args))
    code = parsed.run(parsed)
    out, err = capsys.readouterr()
    return code, out, err


def lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redress", "rules", "lab", *args], capture_output=True, text=True, cwd=ROOT
    )
