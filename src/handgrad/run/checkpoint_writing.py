"""Writing checkpoints: atomic saves, and the RNG states every checkpoint carries for resume."""

from __future__ import annotations

import os
import random
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temp file beside it, fsync, then rename over the old one.

    A process killed mid-save leaves the previous checkpoint intact (rename is atomic within one
    filesystem; Lightning's default stages the file in the system temp dir, which may not be).
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with temp.open("wb") as handle:
                torch.save(checkpoint, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        finally:
            temp.unlink(missing_ok=True)


class RngStateInCheckpoint(L.Callback):
    """Save the random number generators' states in every checkpoint and restore them on resume.

    Dropout and any other draw from the global generators then continue exactly where the
    interrupted run stopped (data order does not depend on them: it is seeded by the epoch).
    """

    def state_dict(self) -> dict:
        state = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
