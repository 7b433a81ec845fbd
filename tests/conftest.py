"""Fixtures every test gets: The Time Machine read from ../shared/data."""

from __future__ import annotations

import pytest

from helpers.runs import SHARED_DATA


@pytest.fixture(autouse=True)
def time_machine_from_shared_data(monkeypatch):
    """Read The Time Machine from ../shared/data (no downloads, nothing written to ~/.cache)."""
    monkeypatch.setenv("HANDGRAD_DATA", str(SHARED_DATA))
