"""Submitit launchers: a local 2-job sweep end to end; the SLURM launcher's config (no cluster)."""

from __future__ import annotations

import json
import os

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from helpers.runs import CONF, run_script

submitit = pytest.importorskip(
    "submitit", reason="needs the slurm extra: pip install -e '.[slurm]'"
)


@pytest.mark.slow
def test_submitit_local_sweep_runs_each_job_in_its_own_process(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_script(
        "train.py",
        "-m",
        "hydra/launcher=submitit_local",
        "model=linear",
        "optimizer.lr=0.05,0.1",
        "trainer.max_epochs=1",
        "callbacks.fit_plot=null",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    job_dirs = sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml"))
    assert len(job_dirs) == 2
    for job_dir in job_dirs:
        assert json.loads((job_dir / "metrics.json").read_text())["status"] == "ok"
    assert list((sweep_dir / ".submitit").iterdir())  # submitit's own logs and pickles
    assert (sweep_dir / "summary.md").read_text().count("| ok |") == 2


def launcher_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides), return_hydra_config=True)
    return cfg.hydra.launcher


@pytest.mark.parametrize("launcher", ["submitit_slurm", "slurm"])
def test_slurm_launcher_composes_into_an_sbatch_script(launcher, tmp_path, monkeypatch):
    cfg = launcher_config(f"hydra/launcher={launcher}", f"hydra.sweep.dir={tmp_path}")
    assert cfg._target_.endswith("SlurmLauncher")
    assert instantiate(cfg).params["nodes"] == 1
    if launcher == "slurm":
        assert (cfg.timeout_min, cfg.cpus_per_task, cfg.mem_gb) == (120, 4, 8)

    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    # Hand the parameters to submitit the way SlurmLauncher.launch does, and render the sbatch
    # script it would submit (submitit only checks that an `srun` exists: give it a stand-in).
    fake_srun = tmp_path / "bin" / "srun"
    fake_srun.parent.mkdir()
    fake_srun.write_text("#!/bin/sh\nexit 1\n")
    fake_srun.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_srun.parent), prepend=os.pathsep)
    params = OmegaConf.to_container(cfg, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base_keys = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{k if k in base_keys else f"slurm_{k}": v for k, v in params.items()}
    )
    script = executor._executor._make_submission_file_text("python train.py", "uid")
    assert "#SBATCH --nodes=1" in script
    assert "#SBATCH --ntasks-per-node=1" in script
    if launcher == "slurm":
        assert "#SBATCH --time=120" in script
        assert "#SBATCH --cpus-per-task=4" in script
        assert "#SBATCH --mem=8GB" in script
