"""Tables and colours for a person at a terminal; plain aligned text when the output is piped.

Scripts should read `--json`; the plain form exists so that `grep`, `less` and
e-mail see no escape codes or box-drawing characters.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, TextIO

# Colours for the values people scan for first.
STYLES = {
    "major": "bold red",
    "urgent": "yellow",
    "general": "green",
    "awaiting_approval": "bold magenta",
    "reopened": "bold yellow",
    "pending_customer": "cyan",
    "closed": "dim",
    "withdrawn": "dim",
    "refused": "red",
    "open": "cyan",
    "BREACHED": "bold red",
    "yes": "bold red",
    "FIRED": "green",
    "FAIL": "bold red",
    "ok": "green",
}


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    right: Sequence[str] = (),
    stream: TextIO | None = None,
) -> None:
    """One table: rich with colours on a terminal, aligned plain columns otherwise.

    `right` names the columns to right-align (numbers).
    """
    stream = stream or sys.stdout
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    if is_terminal(stream):
        _rich_table(headers, cells, title, right, stream)
    else:
        _plain_table(headers, cells, title, right, stream)


def _rich_table(headers, cells, title, right, stream) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold")
    for header in headers:
        table.add_column(header, justify="right" if header in right else "left", no_wrap=True)
    for row in cells:
        table.add_row(*(Text(value, style=STYLES.get(value, "")) for value in row))
    console = Console(file=stream)
    # Never squeeze columns into ellipses: a table wider than the terminal is printed whole and the terminal wraps.
    needed = sum(max([len(h)] + [len(row[i]) for row in cells]) + 3 for i, h in enumerate(headers)) + 1
    if needed > console.width:
        console = Console(file=stream, width=needed)
    console.print(table)


def _plain_table(headers, cells, title, right, stream) -> None:
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if h in right else v.ljust(w) for v, w, h in zip(values, widths, headers, strict=True)]
        return "  ".join(parts).rstrip()

    if title:
        print(title, file=stream)
    print(line(headers), file=stream)
    for row in cells:
        print(line(row), file=stream)
    if title:
        print(file=stream)


def print_fields(pairs: Sequence[tuple[str, Any]], stream: TextIO | None = None) -> None:
    """`label  value` lines (a case's header); the value coloured on a terminal."""
    stream = stream or sys.stdout
    width = max((len(label) for label, _ in pairs), default=0)
    if is_terminal(stream):
        from rich.console import Console
        from rich.text import Text

        console = Console(file=stream, highlight=False)
        for label, value in pairs:
            text = Text(f"{label:<{width}}  ", style="bold")
            text.append(str(value), style=STYLES.get(str(value), ""))
            console.print(text)
    else:
        for label, value in pairs:
            print(f"{label:<{width}}  {value}", file=stream)
