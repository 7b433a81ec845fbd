"""Train a model: `python scripts/train.py model=rnn optimizer=adam` (see conf/ for every knob).

`resume=<run dir>` continues that run in its own dir (see handgrad.run.resume).
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from handgrad.errors import exit_for_user_error
from handgrad.run.checks import check_before_run
from handgrad.run.compose import compose_command_line, null_groups_deleted, output_dirs
from handgrad.run.resume import expand_resume

CONF = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from handgrad.run.task import run_job  # Lightning: imported once the command line is known good

    try:
        return run_job(cfg)
    except Exception as exc:
        exit_for_user_error(exc)


if __name__ == "__main__":
    try:
        sys.argv = expand_resume(sys.argv)
        sys.argv[1:] = null_groups_deleted(CONF, sys.argv[1:])
        cfg = compose_command_line(CONF, "train", sys.argv[1:])
        if cfg is not None:  # a single run: check it all before Hydra makes its run dir
            check_before_run(cfg, output_dirs(cfg))
    except Exception as exc:
        exit_for_user_error(exc)
    main()
