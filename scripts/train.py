"""Train a model: `python scripts/train.py model=rnn optimizer=adam` (see conf/ for every knob).

`resume=<run dir>` continues that run in its own dir (see handgrad.resume).
"""

import sys

import hydra
from omegaconf import DictConfig

from handgrad.errors import exit_for_user_error
from handgrad.resume import expand_resume
from handgrad.train import run


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        return run(cfg)
    except Exception as exc:
        exit_for_user_error(exc)


if __name__ == "__main__":
    try:
        sys.argv = expand_resume(sys.argv)
    except Exception as exc:
        exit_for_user_error(exc)
    main()
