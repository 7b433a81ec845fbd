"""Write what each command on a docs/derivations page prints into the page (`make docs`).

A page marks every generated block with two comments; the block between them is this script's:

    <!-- output: python scripts/gradcheck.py model=mlp model.hidden=[8,4] -->
    ```console
    $ python scripts/gradcheck.py model=mlp model.hidden=[8,4]
    <what the command prints>
    ```
    <!-- end output -->

`<!-- output: python above -->` runs the ```python block just above the comment instead, and
writes what it prints as a ```text block. The gradient checks run `scripts/gradcheck.py` itself,
in this process (one torch import for every page), exactly as the command line reads; a command
that exits non-zero is an error here, so a page never shows a failing check as its output.

    python scripts/derivation_outputs.py            # rewrite every page's blocks
    python scripts/derivation_outputs.py --check    # change nothing; exit 1 naming stale blocks

`--check` (and tests/test_docs_derivations.py) compares the blocks with what the commands print
now, except the digits of the error columns: those are rounding noise that changes with the CPU
and the thread count (it still requires each row to say `yes`). The Time Machine is found as a
run finds it (`$HANDGRAD_DATA`, else `~/.cache/handgrad`, downloaded once).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import runpy
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "derivations"
BLOCK = re.compile(
    r"(?P<open><!-- output: (?P<command>.+?) -->\n)(?P<body>.*?)(?P<close><!-- end output -->)",
    re.DOTALL,
)
PYTHON_ABOVE = "python above"
SNIPPET = re.compile(r"```python\n(.*?)```\s*\Z", re.DOTALL)
ERROR_DIGITS = re.compile(r"\d\.\d{3}e[+-]\d{2}")


def run_gradcheck(command: str) -> str:
    """What `command` (python scripts/gradcheck.py ...) prints, run here; raises when it fails."""
    words = shlex.split(command)
    if words[:2] != ["python", "scripts/gradcheck.py"]:
        raise ValueError(f"{command!r}: a page may only run scripts/gradcheck.py or its snippets")
    script = ROOT / "scripts" / "gradcheck.py"
    printed, argv = io.StringIO(), sys.argv
    sys.argv = [str(script), *words[2:]]
    code = 0
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    if code != 0:
        raise RuntimeError(f"{command} exited with {code}:\n{printed.getvalue()}")
    return printed.getvalue()


def run_snippet(code: str) -> str:
    """What a page's ```python block prints, run in a fresh namespace here."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})
    return printed.getvalue()


def generated(command: str, text_before: str) -> str:
    """The fenced block for `command` (a marker's text), as the page holds it."""
    if command == PYTHON_ABOVE:
        start = text_before.rfind("```python\n")
        snippet = SNIPPET.match(text_before, start) if start >= 0 else None
        if snippet is None:
            raise ValueError("<!-- output: python above --> must follow a ```python block")
        return f"```text\n{run_snippet(snippet[1])}```\n"
    return f"```console\n$ {command}\n{run_gradcheck(command)}```\n"


def page_blocks(text: str) -> list[tuple[re.Match, str]]:
    """Every marked block of a page with what the script writes there now."""
    return [
        (block, generated(block["command"], text[: block.start()]))
        for block in BLOCK.finditer(text)
    ]


def comparable(block: str) -> str:
    """`block` with the error columns' digits masked (see the module docstring)."""
    return ERROR_DIGITS.sub("#.###e-##", block)


def rewrite(page: Path) -> bool:
    """Writes `page` with its blocks regenerated; True when anything changed."""
    text = page.read_text()
    new, end = [], 0
    for block, body in page_blocks(text):
        new += [text[end : block.start("body")], body]
        end = block.end("body")
    new_text = "".join([*new, text[end:]])
    if new_text != text:
        page.write_text(new_text)
    return new_text != text


def stale_blocks(page: Path) -> list[str]:
    """The commands of `page` whose blocks differ from what they print now (digits masked)."""
    return [
        block["command"]
        for block, body in page_blocks(page.read_text())
        if comparable(block["body"]) != comparable(body)
    ]


def pages() -> list[Path]:
    return sorted(PAGES.glob("*.md"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    if args.check:
        stale = [f"{page.relative_to(ROOT)}: {c}" for page in pages() for c in stale_blocks(page)]
        for line in stale:
            print(f"stale: {line}")
        if stale:
            print("run `make docs` (python scripts/derivation_outputs.py) to regenerate them")
        return 1 if stale else 0
    for page in pages():
        if rewrite(page):
            print(f"wrote {page.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
