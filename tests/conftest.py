"""Shared test helpers: compose real configs, run the real CLI in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handgrad.cli import compose_run

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SCRIPTS = ROOT / "scripts"
SHARED_DATA = ROOT.parent / "shared" / "data"


def compose_config(overrides: list[str], output_dir: Path):
    """The config `scripts/train.py` would build, with its run dir pointed at output_dir."""
    return compose_run(CONF, overrides, output_dir)


@pytest.fixture(autouse=True)
def time_machine_from_shared_data(monkeypatch):
    """Read The Time Machine from ../shared/data (no downloads, nothing written to ~/.cache)."""
    monkeypatch.setenv("HANDGRAD_DATA", str(SHARED_DATA))


@pytest.fixture
def compose_in(tmp_path):
    def _compose(*overrides: str):
        return compose_config(list(overrides), tmp_path / "run")

    return _compose


def run_script(script: str, *args: str, cwd: Path, timeout: float = 120):
    """Run scripts/<script> as a user would; returns the CompletedProcess (never raises)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
