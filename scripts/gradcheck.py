"""Check hand gradients against autograd: `python scripts/gradcheck.py model=mlp [train overrides]`.

Prints one row per parameter; exits 0 when all agree within tolerance, 1 when one does not,
2 for a config mistake.
"""

import hydra
from omegaconf import DictConfig

from handgrad.errors import exit_for_user_error
from handgrad.gradcheck import gradcheck


@hydra.main(version_base="1.3", config_path="../conf", config_name="gradcheck")
def main(cfg: DictConfig) -> None:
    try:
        passed = gradcheck(cfg)
    except Exception as exc:
        exit_for_user_error(exc)
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
