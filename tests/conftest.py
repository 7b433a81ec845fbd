"""The Time Machine for the tests that read it, found as a user's run finds it (helpers/corpus.py).

A test that reads the text asks for `time_machine` (the file's path), or for `corpus_env` or the
`corpus` mark (runs that read `data.root` get `HANDGRAD_DATA` pointed at the folder holding it).
Where the text cannot be had, those tests fail with one line saying where to put it; the others
still run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.corpus import CorpusUnavailable, time_machine_file


@pytest.fixture(scope="session")
def time_machine() -> Path:
    """`timemachine.txt` in $HANDGRAD_DATA or ~/.cache/handgrad, downloaded there once if missing
    (pytest keeps a failure too: later tests fail with the same line, without trying again)."""
    try:
        return time_machine_file(os.environ)
    except CorpusUnavailable as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)  # outside `except`: one line, no chained traceback


@pytest.fixture
def corpus_env(time_machine, monkeypatch) -> Path:
    """HANDGRAD_DATA set to the folder holding the text (for this test and the runs it starts)."""
    monkeypatch.setenv("HANDGRAD_DATA", str(time_machine.parent))
    return time_machine


@pytest.fixture(autouse=True)
def corpus_for_marked_tests(request) -> None:
    """`corpus_env` for a test (or a parametrized case) marked `corpus`."""
    if request.node.get_closest_marker("corpus"):
        request.getfixturevalue("corpus_env")
