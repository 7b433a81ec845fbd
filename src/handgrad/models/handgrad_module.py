"""What every handgrad model shares: optimizer and scheduler set-up, `backward: autograd | hand`,
clipping, `compile`.

With `backward: hand` the module switches Lightning to manual optimization and each training step
is: forward and hand-derived gradients under `torch.no_grad()` (subclasses implement
`hand_loss_and_grads`), gradients written into `.grad`, clipping, optimizer step. Clipping runs in
`on_before_optimizer_step`, which Lightning calls in both modes, so `clip_grad_norm` means the same
thing whichever backward trains.

With `compile: true` the math a training step runs goes through torch.compile (`models/compiled.py`,
with its eager fallback): in autograd mode the forward (`training_forward`), in hand mode the hand
forward and backward (`training_hand_pass`). Validation, callbacks and text generation call the
eager `self(...)`: they run in eval mode without gradients, on other shapes, and would each
compile graphs of their own. The compiled functions are the model's own methods on its own
parameters, so checkpoints are the same either way. The seconds spent compiling are logged as
`time/compile_s` at every training epoch's end (the total since the fit started).

What a training epoch accumulates from batch to batch (`self.epoch`, set by each model: at least
its training loss's `WeightedMean`) travels in every checkpoint, under DDP every rank's, so a run
interrupted mid-epoch logs the same epoch metrics as a run that never stopped.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import lightning as L
import torch

from handgrad.errors import require
from handgrad.models.compiled import compile_seconds, compiled_if
from handgrad.optim.param_groups import param_groups

BACKWARDS = ("autograd", "hand")
# Constructor arguments that are objects, not settings: kept out of checkpoints' hyper_parameters.
NOT_HYPERPARAMETERS = ["optimizer", "scheduler"]


class HandgradModule(L.LightningModule):
    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_by_param: dict[str, float] | None = None,
        backward: str = "autograd",
        clip_grad_norm: float | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        scheduler_monitor: str | None = None,
        compile: bool = False,
    ):
        super().__init__()
        require(backward in BACKWARDS, f"model.backward={backward!r} is not one of autograd, hand")
        require(
            clip_grad_norm is None or clip_grad_norm > 0,
            f"model.clip_grad_norm={clip_grad_norm!r} must be > 0, or null for no clipping",
        )
        self.optimizer_factory = optimizer
        self.lr_by_param = dict(lr_by_param or {})
        self.backward_mode = backward
        self.clip_grad_norm = clip_grad_norm
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        require(isinstance(compile, bool), f"model.compile={compile!r} must be true or false")
        self.automatic_optimization = backward == "autograd"
        self.compile_enabled = compile
        self.training_forward = compiled_if(compile and backward == "autograd", self.forward)
        # allow_rnn: a hand pass reads torch's RNN / GRU / LSTM weights (it never calls the fused
        # module); without it Dynamo splits the graph at every touch of such a module.
        self.training_hand_pass = compiled_if(
            compile and backward == "hand", self.hand_pass, allow_rnn=True
        )
        self.compile_seconds_at_start = 0.0

    # --- what subclasses provide -------------------------------------------------------------
    def training_loss(self, batch) -> torch.Tensor:
        """The loss to differentiate (autograd mode)."""
        raise NotImplementedError

    def hand_loss_and_grads(self, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The same loss and one hand-derived gradient per named parameter (hand mode)."""
        raise NotImplementedError(f"{type(self).__name__} has no hand-derived backward pass")

    def hand_pass(self, *tensors):
        """The hand forward and backward as a function of tensors only (what `compile: true`
        compiles in hand mode): `hand_loss_and_grads` unpacks the batch and calls it."""
        raise NotImplementedError(f"{type(self).__name__} has no hand-derived backward pass")

    def not_in_tensorboard(self) -> set[str]:
        """The metrics this model logs for metrics.json only, kept out of TensorBoard's curves
        (`handgrad.run.tensorboard_logger`): none unless a model says so."""
        return set()

    def reference_loss(self, batch) -> torch.Tensor:
        """What the gradient check differentiates with autograd: the training loss, unless that
        draws its random numbers differently from the hand forward (the char-RNN's dropout)."""
        return self.training_loss(batch)

    # --- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["training_epoch"] = gather_from_ranks(self.epoch.state_dict())

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """The training epoch's state of this process's rank, and a checkpoint of the other
        backward mode trains on in this one: its optimizer-step count moves to the loop this mode
        counts in, so global_step (and the logged steps) continue."""
        states = checkpoint.get("training_epoch")
        if states and self._trainer is not None:
            self.epoch.load_state_dict(states[self.trainer.global_rank])
        loop = checkpoint.get("loops", {}).get("fit_loop")
        if loop is None:
            return
        other = "hand" if self.backward_mode == "autograd" else "autograd"
        counted = _step_count(loop, self.backward_mode)
        if counted["total"]["completed"] == 0:
            counted.update(copy.deepcopy(_step_count(loop, other)))

    # --- training ----------------------------------------------------------------------------
    def training_step_loss(self, batch) -> torch.Tensor:
        """Run one optimization step's forward/backward in the configured mode; returns the loss.

        In autograd mode Lightning does backward and step with the returned loss; in hand mode
        this method has already stepped the optimizer.

        Under DDP (world size W > 1) the training loss is the mean of the ranks' losses,
        L = (1/W) sum_r L_r, each L_r computed on rank r's own batch, so its gradient is the mean
        of the ranks' gradients: dL/dtheta = (1/W) sum_r dL_r/dtheta. For autograd DDP's reducer
        computes that during `backward`; it never sees hand gradients, so hand mode averages them
        itself (`mean_across_ranks`: one all-reduce of all gradients flattened into one vector)
        before clipping and stepping. Every rank then clips the same gradient and takes the same
        step, and the replicas stay identical.

        In mixed precision (`trainer.precision=bf16-mixed`, e.g. `device=cpu_bf16`) the hand
        forward and backward run under the autocast Lightning opens around the step: the matrix
        products in bfloat16, as in autograd mode. Their gradients then come in bfloat16 and are
        cast to the parameters' float32 (the master weights the optimizer updates).
        """
        if self.automatic_optimization:
            return self.training_loss(batch)
        optimizer = self.optimizers()
        with torch.no_grad():
            loss, grads = self.hand_loss_and_grads(batch)
        if self.trainer.world_size > 1:
            grads = mean_across_ranks(grads)
        for name, param in self.named_parameters():
            param.grad = grads[name].to(param.dtype)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def is_logging_step(self) -> bool:
        """True on the steps Lightning writes step metrics (every `trainer.log_every_n_steps`).

        Call before the optimizer step. A `self.log` call costs ~0.3 ms, more than a whole step
        of the small models, and Lightning drops what is logged on other steps, so step metrics
        are only logged on these steps.
        """
        return (self.global_step + 1) % self.trainer.log_every_n_steps == 0

    def on_fit_start(self) -> None:
        self.compile_seconds_at_start = compile_seconds()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        if self.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.parameters(), self.clip_grad_norm)
            if self.is_logging_step():
                self.log("weights/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_optimizers(self):
        require(
            self.optimizer_factory is not None,
            "this model was built without an optimizer; pass one to train it",
        )
        optimizer = self.optimizer_factory(param_groups(self.named_parameters(), self.lr_by_param))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = {"scheduler": self.scheduler_factory(optimizer), "name": "train/lr"}
        if self.automatic_optimization:  # Lightning reads these only there (and warns otherwise)
            scheduler |= {
                "interval": "epoch",
                "monitor": self.scheduler_monitor,
                "strict": False,  # epochs without validation leave the learning rate alone
            }
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Nothing: `on_train_epoch_end` steps the scheduler, in both backward modes.

        Lightning's own stepping skips plateau schedulers at the end of an epoch that was resumed
        mid-way, so a resumed run would cut its learning rate later than a straight one.
        """

    def on_train_epoch_end(self) -> None:
        """Log `time/compile_s` (with `compile: true`) and step the scheduler once per epoch (it
        holds the checkpoint's lr state; Lightning saves it). A plateau scheduler steps on the
        monitored metric of the latest validation, and an epoch before the first validation
        leaves the learning rate alone."""
        if self.compile_enabled:
            seconds = compile_seconds() - self.compile_seconds_at_start
            self.log("time/compile_s", seconds, sync_dist=True, reduce_fx="max")
        if self.scheduler_factory is None:
            return
        scheduler = self.lr_schedulers()
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step()
        elif self.scheduler_monitor in self.trainer.callback_metrics:
            scheduler.step(self.trainer.callback_metrics[self.scheduler_monitor])


class WeightedMean:
    """The mean of a per-batch value x_b over an epoch's batches, each weighted by its size n_b
    (its rows, or its tokens):

        mean = Σ_b x_b n_b / Σ_b n_b

    so a short last batch counts for what it holds (for the char-RNN's cross-entropy: the mean per
    token, whose exp is the epoch's perplexity, not a mean of per-batch perplexities). Two running
    sums, kept as tensors on the value's device (no host sync per step); under DDP `compute` adds
    every rank's.
    """

    def __init__(self, total: torch.Tensor | None = None, count: int = 0):
        self.total, self.count = total, count

    def update(self, value: torch.Tensor, count: int) -> None:
        weighted = value.detach().float() * count
        self.total = weighted if self.total is None else self.total + weighted
        self.count += count

    def compute(self, strategy) -> torch.Tensor:
        sums = torch.stack([self.total, self.total.new_tensor(float(self.count))])
        total, count = strategy.reduce(sums, reduce_op="sum")
        return total / count

    def state_dict(self) -> dict:
        return {"total": self.total, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.total, self.count = state["total"], state["count"]


def gather_from_ranks(state: dict) -> list[dict]:
    """[state of rank 0, rank 1, ...]: every rank's `state` (one process: [state])."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [state]
    states = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(states, state)
    return states


def mean_across_ranks(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The element-wise mean of `grads` over all DDP ranks, in one all-reduce of one flat vector.

    Every rank must call this with the same names and shapes (each holds a full replica).
    """
    flat = torch.cat([grad.reshape(-1) for grad in grads.values()])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= torch.distributed.get_world_size()
    chunks = flat.split([grad.numel() for grad in grads.values()])
    return {
        name: chunk.view_as(grad) for (name, grad), chunk in zip(grads.items(), chunks, strict=True)
    }


def _step_count(loop_state: dict, backward: str) -> dict:
    """Where a fit loop's state counts the optimizer steps (its global_step) in `backward` mode:
    hand mode is Lightning's manual optimization, autograd its automatic one."""
    if backward == "hand":
        return loop_state["epoch_loop.manual_optimization.optim_step_progress"]
    return loop_state["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]
