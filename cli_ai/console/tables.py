"""Tables that read at any terminal width.

`show_table` prints a Rich table when every cell fits whole (words may wrap,
nothing is cut with "…"); on a narrower terminal it prints the same rows as a
vertical list instead: the first cell of each row on its own line, then one
"header: value" line per other cell. Paths are never put in tables: print them
on their own line with `soft_wrap=True` so they stay whole for copy-paste."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console as RichConsole
from rich.cells import cell_len
from rich.console import Group
from rich.table import Table


def _min_width(text: str, whole: bool) -> int:
    from rich.text import Text

    lines = Text.from_markup(text).plain.splitlines() or [""]
    return max(cell_len(line) if whole else max([0, *map(cell_len, line.split())]) for line in lines)


def fits(rc: RichConsole, table: Table) -> bool:
    """True when the table can be drawn at this console's width without cutting or splitting a word
    (cells may wrap between words; a no_wrap column needs its whole text)."""
    total, last = 0, len(table.columns) - 1
    for i, column in enumerate(table.columns):
        cells = [str(column.header), *map(str, column.cells)]
        need = max(_min_width(cell, column.no_wrap) for cell in cells)
        left = table.padding[3] if (i > 0 or table.pad_edge) else 0
        right = table.padding[1] if (i < last or table.pad_edge) else 0
        total += max(need, column.min_width or 0) + left + right
    edges = (last + (2 if table.show_edge else 0)) if table.box else 0
    return total + edges <= rc.width


def vertical(headers: Sequence[str], rows: Sequence[Sequence[str]], *, title: str | None = None) -> Group:
    """The rows as blocks: the first cell in bold on its own line, then indented `header  value` lines."""
    keys = [header.replace("\n", " ") for header in headers[1:]]
    parts: list = [f"[italic]{title}[/]"] if title else []
    for row in rows:
        parts.append(f"[bold]{row[0]}[/]")
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for key, cell in zip(keys, row[1:]):
            if cell != "":
                grid.add_row(f"  [dim]{key}[/]", cell)
        parts.append(grid)
    return Group(*parts)


def show_table(rc: RichConsole, table: Table, rows: Sequence[Sequence[str]]) -> None:
    """Print `table` (built from `rows`, same order as its columns), or its vertical form when too narrow."""
    if fits(rc, table):
        rc.print(table)
        return
    headers = [str(column.header) for column in table.columns]
    title = str(table.title) if table.title else None
    rc.print(vertical(headers, rows, title=title))


def knob_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], *, first: str = "param") -> Table:
    """first | headers...: the first cell (a param's name) is never wrapped or cut, the other cells fold."""
    table = Table(title=title, title_justify="left")
    table.add_column(first, no_wrap=True, min_width=max([len(first), *(len(row[0]) for row in rows)]))
    for header in headers:
        table.add_column(header, overflow="fold", style="dim" if header == "safe range" else None)
    for row in rows:
        table.add_row(*row)
    return table
