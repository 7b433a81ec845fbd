"""`resume=<run dir>`: continue a run in its own dir, with its own config, from its last.ckpt.

`python scripts/train.py resume=outputs/runs/<date>/<time>_linear trainer.max_epochs=20` becomes
the run's original overrides (from `.hydra/overrides.yaml`), then `hydra.run.dir=<run dir>` and
`ckpt_path=<run dir>/checkpoints/last.ckpt`, then the new overrides (which win). The run keeps its
directory and its TensorBoard run; `train` purges any events logged after the checkpoint's step.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from handgrad.errors import CheckpointError, ConfigError
from handgrad.run.dir_claim import lock

RESUME = "resume="
# Overrides a resumed run sets itself; the original run's values for them are dropped.
REPLACED_KEYS = ("hydra.run.dir", "ckpt_path")


def override_key(override: str) -> str:
    """'+trainer.max_epochs=3' -> 'trainer.max_epochs'."""
    return override.split("=", 1)[0].lstrip("+~")


def expand_resume(argv: list[str]) -> list[str]:
    """Rewrite a command line holding `resume=<run dir>` (argv[0] is the program); else as is."""
    requests = [arg for arg in argv[1:] if arg.startswith(RESUME)]
    if not requests:
        return argv
    if any(arg in ("-m", "--multirun") for arg in argv):
        raise ConfigError("resume= continues one run; it cannot be combined with -m/--multirun")
    run_dir = Path(requests[-1][len(RESUME) :]).expanduser().resolve()
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    if not overrides_file.is_file():
        raise CheckpointError(
            f"resume={run_dir}: not a run dir (no .hydra/overrides.yaml); "
            "pass a dir under outputs/runs/ or outputs/multirun/<stamp>/"
        )
    if not checkpoint.is_file():
        raise CheckpointError(
            f"resume={run_dir}: no checkpoints/last.ckpt to continue from; start a new run instead"
        )
    lock(run_dir, f"resume={run_dir}")  # refused while the run is still running
    new = [arg for arg in argv[1:] if not arg.startswith(RESUME)]
    new_keys = {override_key(arg) for arg in new}
    original = [
        override
        for override in OmegaConf.to_container(OmegaConf.load(overrides_file))
        if override_key(override) not in new_keys | set(REPLACED_KEYS)
    ]
    located = [f"hydra.run.dir='{run_dir}'", f"ckpt_path='{checkpoint}'"]
    return [argv[0], *original, *located, *new]
