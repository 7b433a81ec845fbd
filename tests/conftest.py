"""Shared test helpers: compose real configs, run the real CLI in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
SCRIPTS = ROOT / "scripts"
SHARED_DATA = ROOT.parent / "shared" / "data"


def compose_config(overrides: list[str], output_dir: Path):
    """The config `scripts/train.py` would build, with its run dir pointed at output_dir."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


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
