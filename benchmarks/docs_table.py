"""`make bench` writes its table into docs/benchmarks.md: the latest measurement of each case,
one row a case, between two marker lines. A run of some cases (`--cases`) replaces those cases'
rows and keeps the others, each row dated; a `--quick` run writes nothing (a smoke test, not a
measurement)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import TABLE_COLUMNS, machine_line, table_row

BEGIN = "<!-- make bench: begin (written by benchmarks/docs_table.py; edit around it) -->"
END = "<!-- make bench: end -->"
COLUMNS = (*TABLE_COLUMNS, "measured")


def update_docs(report: dict, page: Path) -> None:
    """Put this run's rows into `page`'s marked table, replacing those of the same cases."""
    text = page.read_text()
    head, rest = text.split(BEGIN + "\n", 1)
    block, tail = rest.split(END, 1)
    rows = {_case_name(line): line for line in block.splitlines() if _case_name(line)}
    when = f"{report['started'][:10]}, load {report['machine']['load_avg_start'][0]:.1f}"
    for case in report["cases"]:
        rows[case["name"]] = "| " + " | ".join([*table_row(case), when]) + " |"
    table = [
        f"Latest run: {machine_line(report['machine'])}.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *rows.values(),
    ]
    page.write_text(head + BEGIN + "\n" + "\n".join(table) + "\n" + END + tail)


def _case_name(line: str) -> str | None:
    """The case a table row is about (its first cell), or None for any other line."""
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    if not line.startswith("| ") or cells[0] in ("case", "") or set(cells[0]) <= {"-"}:
        return None
    return cells[0]
