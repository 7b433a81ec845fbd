"""A callback that fills the disk: from epoch `from_epoch` on, every checkpoint save writes a few
bytes and then fails with ENOSPC, as on a full filesystem (put tests/helpers on PYTHONPATH)."""

from __future__ import annotations

import errno
import os

import lightning as L
import torch


class FullDiskFrom(L.Callback):
    def __init__(self, from_epoch: int):
        self.from_epoch = from_epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.from_epoch:
            torch.save = save_on_a_full_disk


def save_on_a_full_disk(obj, f, *args, **kwargs) -> None:
    f.write(b"PK\x03\x04")  # the first bytes fit
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
