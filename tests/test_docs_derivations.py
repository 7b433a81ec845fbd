"""The derivation pages (docs/derivations/*.md) show what their commands print now, and their math
is written in the dialect GitHub renders.

Each page's generated blocks (`<!-- output: ... -->`, written by scripts/derivation_outputs.py,
`make docs`) are regenerated here and compared with the page, the error columns' digits aside
(float rounding noise that changes with the CPU and the thread count): a renamed parameter, a
changed shape, a new row or a failing check makes the page stale and this test fail.
"""

from __future__ import annotations

import importlib.util
import re

import pytest

from helpers.runs import ROOT

PAGES = sorted((ROOT / "docs" / "derivations").glob("*.md"))
FAMILIES = [page for page in PAGES if page.name != "README.md"]
# Macros GitHub's MathJax does not take (or that define things a page cannot rely on).
UNSUPPORTED = ("\\newcommand", "\\def", "\\DeclareMathOperator", "\\bm{", "\\require", "\\label")


def load_script():
    path = ROOT / "scripts" / "derivation_outputs.py"
    spec = importlib.util.spec_from_file_location("derivation_outputs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


outputs = load_script()


def page_id(page) -> str:
    return page.name


@pytest.mark.parametrize("page", FAMILIES, ids=page_id)
def test_every_family_page_shows_a_generated_check(page):
    blocks = list(outputs.BLOCK.finditer(page.read_text()))
    assert blocks, f"{page.name} has no <!-- output: ... --> block"
    for block in blocks:
        assert block["body"].startswith(("```console\n$ ", "```text\n")), block["command"]
        assert block["body"].endswith("```\n"), block["command"]
        assert block["body"].count("\n") > 2, f"{block['command']}: empty; run `make docs`"


@pytest.mark.corpus
@pytest.mark.parametrize("page", FAMILIES, ids=page_id)
def test_generated_blocks_are_what_the_commands_print_now(page):
    assert outputs.stale_blocks(page) == [], "stale: run `make docs` and commit the pages"


def test_comparison_masks_only_the_error_digits():
    row = "w          (1, 1)  1.388e-17    2.912e-16    yes"
    assert outputs.comparable(row) == outputs.comparable(row.replace("1.388e-17", "0.000e+00"))
    assert outputs.comparable(row) != outputs.comparable(row.replace("(1, 1)", "(1, 2)"))
    assert outputs.comparable(row) != outputs.comparable(row.replace("yes", "NO"))


def math_outside_code(text: str) -> str:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]+`", "", text)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_math_is_githubs_dialect(page):
    text = math_outside_code(page.read_text())
    display = [line for line in text.splitlines() if "$$" in line]
    assert all(line.strip() == "$$" for line in display), "$$ must stand on a line of its own"
    assert len(display) % 2 == 0, "a $$ block is not closed"
    assert not [macro for macro in UNSUPPORTED if macro in text]
    for paragraph in re.sub(r"^\$\$\n.*?^\$\$\n", "", text, flags=re.S | re.M).split("\n\n"):
        inline = re.sub(r"\\\$", "", paragraph).count("$")
        assert inline % 2 == 0, f"an inline $ is not closed in:\n{paragraph}"
