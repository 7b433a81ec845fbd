"""Compose real configs and run the real scripts, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from handgrad.run.compose import compose_run

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
SCRIPTS = ROOT / "scripts"
SHARED_DATA = ROOT.parent / "shared" / "data"
HELPERS = Path(__file__).resolve().parent


def compose_config(overrides: list[str], output_dir: Path):
    """The config `scripts/train.py` would build, with its run dir pointed at output_dir."""
    return compose_run(CONF, overrides, output_dir)


def run_script(script: str, *args: str, cwd: Path, timeout: float = 120, env: dict | None = None):
    """Run scripts/<script> as a user would; returns the CompletedProcess (never raises)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(SCRIPTS / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
