"""Where the tests find The Time Machine: the way a user's run finds it.

`HANDGRAD_DATA` when it is set, else the download cache `~/.cache/handgrad` (the `data.root`
default), downloading the text there once through the project's own download code (atomic,
sha1-checked) when it is missing. `tests/conftest.py` resolves it once per session; no test builds
the path itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from handgrad.data.download import cached_download
from handgrad.data.timemachine import KNOWN_SHA1, TIME_MACHINE_URL
from handgrad.errors import DataError

DEFAULT_CACHE = "~/.cache/handgrad"


class CorpusUnavailable(Exception):
    """The text is neither in the data dir nor downloadable; the message says what to do."""


def data_dir(environ: Mapping[str, str]) -> Path:
    """The folder a run reads `timemachine.txt` from: `$HANDGRAD_DATA`, else the cache."""
    return Path(environ.get("HANDGRAD_DATA") or DEFAULT_CACHE).expanduser()


def time_machine_file(
    environ: Mapping[str, str], url: str = TIME_MACHINE_URL, sha1: str | None = None
) -> Path:
    """The checked `timemachine.txt` in `data_dir(environ)`, downloaded from `url` if missing.

    Raises CorpusUnavailable with one line naming the folder to put the file in and the variable
    to set, when the file is missing and cannot be downloaded (or is the wrong file).
    """
    folder = data_dir(environ)
    try:
        return cached_download(url, folder, sha1 or KNOWN_SHA1.get(url))
    except DataError as exc:
        raise CorpusUnavailable(
            f"The Time Machine is not available to this test ({exc.__cause__ or exc}); put "
            f"timemachine.txt in {folder}, or set HANDGRAD_DATA=<dir holding timemachine.txt>"
        ) from exc


def corpus_cases(cases: Mapping[str, list[str]], names: Iterable[str] | None = None) -> list:
    """The names of `cases` (name -> overrides) as parametrize values, those of char-RNN runs
    marked `corpus` (they read The Time Machine)."""
    return [
        pytest.param(name, marks=pytest.mark.corpus) if "model=rnn" in cases[name] else name
        for name in (cases if names is None else names)
    ]
