"""Every relative link and image in README.md and docs/**/*.md points at a file that exists, and
every `#anchor` at a heading of its page, slugged as GitHub slugs headings: the heading's text
(code spans, links and emphasis rendered to their text), lower case, every character that is not a
letter, digit, `_`, `-` or space dropped, spaces as `-`, and a repeated slug numbered `-1`, `-2`.
Links inside code (spans and blocks) are text, not links, and web addresses are not followed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers.runs import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def without_code(text: str) -> str:
    """`text` with fenced code blocks and code spans blanked (their lines kept, for headings)."""
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m[0].count("\n"), text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]+`", "``", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's markdown text."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of `page`'s headings (numbered as GitHub numbers repeats)."""
    seen: dict[str, int] = {}
    found = set()
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    for line in text.splitlines():
        match = HEADING.match(line)
        if match:
            base = slug(match[2])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return LINK.findall(without_code(page.read_text()))


def test_the_pages_are_found():
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/runs.md", "docs/derivations/transformer.md"} <= names


def test_slugs_follow_github():
    assert slug("The Time Machine (`data=timemachine`)") == "the-time-machine-datatimemachine"
    assert slug("Interrupts and `last.ckpt`") == "interrupts-and-lastckpt"
    assert slug("SGD, Adam and AdamW: the update rules") == "sgd-adam-and-adamw-the-update-rules"
    assert slug("Scaling out: GPUs, DDP, SLURM") == "scaling-out-gpus-ddp-slurm"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not a page")
    assert not broken, "\n".join(broken)
