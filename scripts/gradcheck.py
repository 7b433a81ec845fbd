"""Check hand gradients against autograd: `python scripts/gradcheck.py model=mlp [train overrides]`.

Prints one row per parameter; exits 0 when all agree within tolerance, 1 when one does not,
2 for a config mistake.
"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from handgrad.errors import exit_for_user_error
from handgrad.run.compose import compose_command_line, null_groups_deleted
from handgrad.settings import check_settings

CONF = Path(__file__).resolve().parent.parent / "conf"


@hydra.main(version_base="1.3", config_path="../conf", config_name="gradcheck")
def main(cfg: DictConfig) -> None:
    from handgrad.gradcheck import gradcheck  # Lightning: once the command line is known good

    try:
        passed = gradcheck(cfg)
    except Exception as exc:
        exit_for_user_error(exc)
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    try:
        sys.argv[1:] = null_groups_deleted(CONF, sys.argv[1:])
        composed = compose_command_line(CONF, "gradcheck", sys.argv[1:])
        if composed is not None:  # every key, before Lightning is imported
            check_settings(composed[0])
    except Exception as exc:
        exit_for_user_error(exc)
    main()
