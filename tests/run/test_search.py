"""Optuna search: trials are ordinary runs, the study persists in the sweep dir and continues."""

from __future__ import annotations

import csv
import json

import pytest

from helpers.runs import run_script

optuna = pytest.importorskip("optuna", reason="needs the hpo extra: pip install -e '.[hpo]'")

TINY = ["trainer.max_epochs=1", "callbacks.fit_plot=null"]


def search(sweep_dir, *overrides):
    return run_script(
        "train.py",
        "hparams_search=mlp_optuna",
        f"hydra.sweep.dir={sweep_dir}",
        *TINY,
        *overrides,
        cwd=sweep_dir.parent,
    )


def trial_states(sweep_dir) -> list[str]:
    study = optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{sweep_dir}/optuna.db")
    return [trial.state.name for trial in study.trials]


@pytest.mark.slow  # two searches of three trials
def test_study_persists_continues_and_survives_failed_trials(tmp_path):
    sweep_dir = tmp_path / "search"
    result = search(sweep_dir, "hydra.sweeper.n_trials=3")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "alembic" not in result.stdout + result.stderr  # its set-up lines are silenced
    job_dirs = [p for p in sweep_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(job_dirs) == 3
    for job_dir in job_dirs:
        assert json.loads((job_dir / "metrics.json").read_text())["status"] == "ok"
        overrides = (job_dir / ".hydra" / "overrides.yaml").read_text()
        assert "model.hidden.0=" in overrides and "optimizer.lr=" in overrides
    assert trial_states(sweep_dir) == ["COMPLETE"] * 3
    assert (sweep_dir / "summary.md").exists()
    best = (sweep_dir / "optimization_results.yaml").read_text()

    # Same sweep dir: the study goes on. Every new trial fails (a NaN-scored run): each is
    # recorded as FAIL with its reason and the search still runs all of them and ends cleanly.
    result = search(
        sweep_dir, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=2", "optimizer.lr=-1"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert trial_states(sweep_dir) == ["COMPLETE"] * 3 + ["FAIL"] * 3
    assert len(list(sweep_dir.glob("*/metrics.json"))) == 6
    assert "Failed experiment: optimizer.lr=-1: the learning rate must be" in result.stdout
    with (sweep_dir / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["ok"] * 3 + ["failed"] * 3
    assert all("learning rate" in row["error"] for row in rows[3:])
    assert (sweep_dir / "optimization_results.yaml").read_text() == best
