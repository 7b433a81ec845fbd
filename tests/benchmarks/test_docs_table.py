"""`make bench` keeps docs/benchmarks.md's table: one dated row a case, a later run of a case
replacing its row and leaving the others."""

from __future__ import annotations

from benchmarks.docs_table import BEGIN, END, update_docs

MACHINE = {
    "cpu": "CPU",
    "cores": 2,
    "usable_cores": 2,
    "torch": "2.13.0",
    "lightning": "2.6.6",
    "python": "3.11",
    "torch_threads": 2,
    "load_avg_start": [0.5, 0, 0],
}


def failed(name: str, error: str) -> dict:
    return {"name": name, "kind": "plain", "error": error}


def report(started: str, *cases: dict) -> dict:
    return {"machine": MACHINE, "started": started, "cases": list(cases)}


def test_a_run_replaces_its_cases_rows_and_keeps_the_others(tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\n{BEGIN}\n{END}\n\nThe rest of the page.\n")
    update_docs(report("2026-12-01T10:00:00", failed("a", "first"), failed("b", "first")), page)
    update_docs(report("2026-12-06T10:00:00", failed("b", "second")), page)
    text = page.read_text()
    rows = [
        line for line in text.splitlines() if line.startswith("| a |") or line.startswith("| b |")
    ]
    assert rows == [
        "| a | FAILED | first |  |  |  |  |  | 2026-12-01, load 0.5 |",
        "| b | FAILED | second |  |  |  |  |  | 2026-12-06, load 0.5 |",
    ]
    assert text.startswith("# Benchmarks\n\n" + BEGIN) and text.endswith(
        END + "\n\nThe rest of the page.\n"
    )
