"""Ctrl-C and SIGTERM under DDP in worker processes (`ddp_fork`, `ddp_spawn`: device=ddp,
multi_gpu): every rank stops at the same step, every rank saves its part of `last.ckpt`, rank 0's
results reach the launching process, and that process exits 130 / 143 like a run in one process.

Lightning runs `trainer.fit` in its workers without the interrupt handling it gives a run in one
process: a worker that stops on SIGTERM raises SIGTERMException (a SystemExit) straight out of
the process, so no `on_exception` hook runs (no `last.ckpt`), rank 0 never hands back its results
and the launcher waits for them forever. And each rank acts on its own flag, so a rank that got the
signal first stops alone while the others wait for it in their next collective. Here:

- A worker's Ctrl-C / SIGTERM handler only notes the signal (`RankSignals`; Lightning's own
  SIGTERM handler runs a collective inside the handler, on one rank).
- The ranks agree on it with one all-reduce after every training batch (`StopTogether`); the flag
  Lightning's loops check is the agreed one, so every rank stops at the same step, where a run in
  one process stops: after the batch, or after the validation that follows it. Never inside a
  validation pass (the ranks' validation batches may differ in number): a signal during one stops
  the run after the next training batch.
- Each worker runs its part the way `trainer.fit` runs in one process on an interrupt: the
  `on_exception` hooks (`LastCheckpoint` saves, a collective on every rank), then Lightning's
  teardown; it returns `Interrupted` instead of raising, so rank 0's results reach the launcher
  (`InterruptibleLauncher`). The launching process passes a Ctrl-C or SIGTERM it gets on to the
  workers; a second Ctrl-C kills them at once (the last `last.ckpt` saved is kept).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
from typing import NamedTuple

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.trainer import call
from lightning.pytorch.trainer.connectors.signal_connector import _SignalConnector
from lightning.pytorch.utilities.exceptions import SIGTERMException

from handgrad.run.interrupts import EXIT_SIGINT, EXIT_SIGTERM

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_ranks_together(trainer: L.Trainer) -> None:
    """Make an interrupt stop all of `trainer`'s worker processes together (see the module's
    docstring); nothing changes for a run in one process."""
    launcher = trainer.strategy.launcher
    if type(launcher) is not _MultiProcessingLauncher:
        return
    trainer.strategy._launcher = InterruptibleLauncher(trainer.strategy, launcher._start_method)
    trainer._signal_connector = RankSignals(trainer)
    trainer.callbacks.append(StopTogether())


def workers_exit_code(trainer: L.Trainer) -> int | None:
    """130 / 143 when the workers of the last launch stopped on Ctrl-C / SIGTERM, else None."""
    launcher = trainer.strategy.launcher
    signum = getattr(launcher, "stopped_by", None)
    if signum is None:
        return None
    return EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM


class RankSignals(_SignalConnector):
    """A worker's Ctrl-C and SIGTERM: noted (`noted`, the signal's number) and acted on only once
    the ranks agree (`agree`). Replaces Lightning's handlers for the fit (restored at its teardown).

    `received_sigterm`, the flag Lightning's loops check, is the agreed signal, hidden while the
    ranks validate: their validation batches may differ in number, so they could not stop at the
    same one; they finish the pass and stop after it, where a run in one process checks next.
    """

    def __init__(self, trainer: L.Trainer):
        super().__init__(trainer)
        self.noted = 0  # the signal this process got (0: none)
        self.agreed = 0  # the signal some rank got, once the ranks agreed on it

    @property
    def received_sigterm(self) -> bool:
        return bool(self.agreed) and not self.trainer.validating

    @received_sigterm.setter
    def received_sigterm(self, value: bool) -> None:
        """Lightning clears the flag when it sets its handlers up: ours is `agreed`."""

    def register_signal_handlers(self) -> None:
        self.noted = self.agreed = 0
        self._original_handlers = self._get_current_signal_handlers()
        self.note_signals()

    def note_signals(self) -> None:
        """Note Ctrl-C and SIGTERM from now on (a signal this process ignores stays ignored)."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                signal.signal(signum, self.note)

    def note(self, signum: int, frame) -> None:
        self.noted = max(self.noted, signum)

    def agree(self, trainer: L.Trainer) -> None:
        """`agreed`: the signal any rank noted (0: none), by one all-reduce; every rank calls it
        at the same point. The larger number wins (SIGTERM over Ctrl-C)."""
        flag = torch.tensor([self.noted], dtype=torch.int32, device=trainer.strategy.root_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        self.agreed = int(flag.item())


class StopTogether(L.Callback):
    """The ranks agree on a noted signal after every training batch (`RankSignals.agree`):
    Lightning's check that follows the batch (and its validation, if one is due) then stops every
    rank at the same step, where a run in one process stops."""

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        trainer._signal_connector.agree(trainer)


class Interrupted(NamedTuple):
    """What a worker stopped by a signal returns to the launcher."""

    signum: int


def run_in_worker(function, trainer: L.Trainer, *args, **kwargs):
    """In each worker: `function` (the trainer's fit, validate, ...); on an agreed interrupt what
    Lightning does for `trainer.fit` in one process (the `on_exception` hooks, teardown), then
    `Interrupted` is returned instead of raised, so rank 0's results still reach the launcher."""
    signals = trainer._signal_connector
    signals.note_signals()  # at once (a spawned worker starts with Python's handlers)
    try:
        return function(*args, **kwargs)
    except SIGTERMException as exc:
        call._interrupt(trainer, exc)  # LastCheckpoint saves: every rank takes part
        trainer._teardown()
        trainer.state.stage = None
        return Interrupted(signals.agreed or signal.SIGTERM)


class InterruptibleLauncher(_MultiProcessingLauncher):
    """Lightning's launcher of worker processes, with the workers run by `run_in_worker` and a
    Ctrl-C or SIGTERM to the launching process passed on to them. `stopped_by`: the signal that
    stopped the workers of the last launch (None: they finished)."""

    stopped_by: int | None = None

    def launch(self, function, *args, trainer: L.Trainer | None = None, **kwargs):
        self.stopped_by = None
        if trainer is not None:
            function = functools.partial(run_in_worker, function, trainer)
        with self.signals_passed_on():
            result = super().launch(function, *args, trainer=trainer, **kwargs)
        if trainer is not None:
            # A resumed run's TensorBoard writer purges what the interrupted run logged after the
            # checkpoint: rank 0's did. This process's writer, opened later for the hparams, would
            # purge the workers' new curves from the display: it must not purge again.
            for logger in trainer.loggers:
                if isinstance(logger, TensorBoardLogger):
                    logger._kwargs.pop("purge_step", None)
        if isinstance(result, Interrupted):
            self.stopped_by = result.signum
            return None
        return result

    @contextlib.contextmanager
    def signals_passed_on(self):
        """While the workers run: the first Ctrl-C or SIGTERM to this process goes on to them (a
        Ctrl-C at a terminal reaches them anyway: they note it once); a second Ctrl-C kills them."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        launching_pid, received = os.getpid(), []

        def pass_on(signum: int, frame) -> None:
            if os.getpid() != launching_pid:  # a forked worker before it notes signals itself
                return
            if signum == signal.SIGINT and signal.SIGINT in received:
                self.kill(signal.SIGKILL)
                log.warning("second Ctrl-C: the worker processes were killed")
                raise SystemExit(EXIT_SIGINT)
            received.append(signum)
            self.kill(signum)

        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        for signum, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(signum, pass_on)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
