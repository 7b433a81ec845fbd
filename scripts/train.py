"""Train a model: `python scripts/train.py model=rnn optimizer=adam` (see conf/ for every knob).

`resume=<run dir>` continues that run in its own dir (see handgrad.run.resume). Every run and sweep
claims a dir of its own and locks it while it lives (see handgrad.run.dir_claim).
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from handgrad.errors import exit_for_user_error
from handgrad.run.checks import check_before_run
from handgrad.run.compose import compose_command_line, null_groups_deleted, output_dirs
from handgrad.run.dir_claim import claim_output_dir
from handgrad.run.resume import RESUME, expand_resume

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
        resuming = any(arg.startswith(RESUME) for arg in sys.argv[1:])
        sys.argv = expand_resume(sys.argv)  # and locks the run dir it continues
        sys.argv[1:] = null_groups_deleted(CONF, sys.argv[1:])
        composed = compose_command_line(CONF, "train", sys.argv[1:])
        if composed is not None:  # check it all before the run (or sweep) claims its dir
            cfg, multirun = composed
            if not multirun:
                check_before_run(cfg, output_dirs(cfg))
            sys.argv[1:] = claim_output_dir(cfg, sys.argv[1:], multirun, resuming)
    except Exception as exc:
        exit_for_user_error(exc)
    main()
