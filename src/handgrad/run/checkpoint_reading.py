"""Reading checkpoint files: the one loader every command uses (`ckpt_path=`, `resume=`, generate).

`load_checkpoint` always reads with `torch.load(weights_only=True)`: a checkpoint is plain
containers and tensors, so a file holding anything else — a crafted pickle whose
unpickling would run code — is refused, not executed. Every way a file can be wrong is a one-line
`CheckpointError` naming it. This module imports torch only (not Lightning), so the command-line
checks that use it fail fast.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterable
from pathlib import Path

import torch

from handgrad.errors import CheckpointError

# What Lightning needs to continue training from a checkpoint (not just load its weights).
TRAINING_KEYS = ("state_dict", "epoch", "global_step", "optimizer_states", "loops")


def load_checkpoint(path: str | Path, keys: Iterable[str] = ("state_dict",)) -> dict:
    """The checkpoint at `path` as a dict holding `keys`; a CheckpointError for anything else."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {path} is a directory; pass a .ckpt file, e.g. {path}/last.ckpt, "
            "or continue a run with resume=<run dir>"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; check the path")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL (\S+)|global: (\S+)", str(exc), flags=re.IGNORECASE)
        if found:
            raise CheckpointError(
                f"checkpoint {path} was refused: it holds pickled Python objects "
                f"({(found[1] or found[2]).rstrip('.,')}), not only tensors and plain containers, "
                "and loading it could run code; use a checkpoint a handgrad run wrote, "
                "from a source you trust"
            ) from exc
        raise _unreadable(path, exc) from exc
    except Exception as exc:  # torch.load fails in many ways on a damaged or foreign file
        raise _unreadable(path, exc) from exc
    missing = [key for key in keys if not (isinstance(checkpoint, dict) and key in checkpoint)]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} is not a handgrad training checkpoint (no {', '.join(missing)}); "
            "use a .ckpt from a run's checkpoints/ dir"
        )
    return checkpoint


def _unreadable(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} cannot be read ({type(exc).__name__}): it is damaged (e.g. truncated) "
        "or not a PyTorch checkpoint; use another .ckpt from the run's checkpoints/ dir"
    )


def check_fits(
    path: str | Path,
    checkpoint: dict,
    state_dict: dict[str, torch.Tensor],
    vocab: list[str] | None = None,
) -> None:
    """Raise CheckpointError unless `checkpoint` fits a model with `state_dict` (and `vocab`)."""
    saved_vocab = checkpoint.get("vocab")
    if vocab is not None and saved_vocab is not None and list(saved_vocab) != list(vocab):
        raise CheckpointError(
            f"checkpoint {path} was trained on another vocabulary ({len(saved_vocab)} tokens) "
            f"than this data's ({len(vocab)} tokens); continue with the data.path it was trained on"
        )
    saved = checkpoint["state_dict"]
    if set(saved) != set(state_dict):
        raise CheckpointError(
            f"checkpoint {path} is from another kind of model: it holds "
            f"{_names(saved)}, this model has {_names(state_dict)}; pass a checkpoint of a run "
            "with the same model=..."
        )
    for name, tensor in state_dict.items():
        theirs = saved[name]
        if not isinstance(theirs, torch.Tensor) or theirs.shape != tensor.shape:
            shape = tuple(theirs.shape) if isinstance(theirs, torch.Tensor) else type(theirs)
            raise CheckpointError(
                f"checkpoint {path} does not fit this model: {name} is {shape} there and "
                f"{tuple(tensor.shape)} here; use the model.* and data.* sizes it was trained with"
            )


def _names(state_dict: dict) -> str:
    names = list(state_dict)
    return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")
