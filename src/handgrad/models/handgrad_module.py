"""The model contract, and the base class that does everything else.

A handgrad model is a `HandgradModule` subclass that provides five things:

    forward(inputs, state=None)             its eager forward (validation, callbacks, generation)
    loss(batch, state) -> (loss, state)     the training loss through `forward`, for autograd
    hand_loss_and_grads(batch, state)       the same loss and one hand-derived gradient per
        -> (loss, grads, state)             named parameter (`grads/` has the math), no autograd
    batch_weight(batch) -> int              what the batch counts for in the epoch's mean loss
    record_validation(batch, state)         log (or count) one validation batch's metrics
        -> state

`state` is what a batch hands on to the next one (the char-RNN's hidden state); a model without
one takes None and returns None. A model may also override `initial_state(batch)` (what an
epoch's first batch starts from; None by default), `reference_loss(batch, state)` (what the
gradient check differentiates with autograd when `loss` draws its random numbers differently from
the hand forward) and `not_in_tensorboard()`. Adding a model = those methods, its hand backward
in `grads/`, a YAML file in `conf/model/`, tests.

The base alone owns, for every model:
- the backward mode (`backward: autograd | hand`): autograd hands `loss` to Lightning's automatic
  optimization; hand mode switches Lightning to manual optimization and each step is
  `hand_loss_and_grads` under `torch.no_grad()`, gradients written into `.grad` (under DDP first
  averaged across ranks), clipping, optimizer step;
- clipping (`clip_grad_norm`, in `on_before_optimizer_step`, which Lightning calls in both modes);
- `compile: true`: the training step's `loss` (autograd mode) or `hand_loss_and_grads` (hand mode)
  goes through torch.compile (`models/compiled.py`, with its eager fallback). Validation,
  callbacks and generation run the eager methods: in eval mode, without gradients, on other
  shapes, they would each compile graphs of their own. The compiled functions are the model's
  own methods on its own parameters, so checkpoints are the same either way;
- the carried state: when the data's batches continue each other (`rows_continue` on the data
  module: row i of batch k+1 continues row i of batch k) the state a training batch ends with,
  detached, is the next batch's start; a new epoch starts from `initial_state`, and validation
  carries its own state from None;
- the training epoch (`models/training_epoch.py`: carried state, mean loss, seconds), written
  into every checkpoint, under DDP every rank's;
- what the gradient check compares (`gradient_pair`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import lightning as L
import torch

from handgrad.errors import require
from handgrad.models.across_ranks import gather_from_ranks, mean_across_ranks
from handgrad.models.compiled import compile_seconds, compiled_if
from handgrad.models.training_epoch import CarriedState, TrainingEpoch, detach_state
from handgrad.optim.param_groups import embedding_tables, param_groups

# Constructor arguments that are objects, not settings: kept out of checkpoints' hyper_parameters.
NOT_HYPERPARAMETERS = ["optimizer", "scheduler"]

Grads = dict[str, torch.Tensor]


class HandgradModule(L.LightningModule):
    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        lr_by_param: dict[str, float] | None = None,
        decay: str = "all",
        backward: str = "autograd",
        clip_grad_norm: float | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        scheduler_monitor: str | None = None,
        compile: bool = False,
    ):
        super().__init__()
        self.optimizer_factory = optimizer
        self.lr_by_param = dict(lr_by_param or {})
        self.decay = decay  # which parameters weight decay applies to (optim/param_groups.py)
        self.backward_mode = backward
        self.clip_grad_norm = clip_grad_norm
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        self.automatic_optimization = backward == "autograd"
        self.compile_enabled = compile
        self.training_loss = compiled_if(compile and backward == "autograd", self.loss)
        # allow_rnn: a hand pass reads torch's RNN / GRU / LSTM weights (it never calls the fused
        # module); without it Dynamo splits the graph at every touch of such a module.
        self.training_hand_pass = compiled_if(
            compile and backward == "hand", self.hand_loss_and_grads, allow_rnn=True
        )
        self.compile_seconds_at_start = 0.0
        self.rows_continue = False  # from the data module, in `setup`
        self.epoch = TrainingEpoch()
        self.validation_state: CarriedState = None

    # --- the contract: what a model provides (see the module docstring) ------------------------
    def loss(self, batch, state: CarriedState) -> tuple[torch.Tensor, CarriedState]:
        """The training loss through `forward` (autograd differentiates it) and the final state."""
        raise NotImplementedError

    def hand_loss_and_grads(
        self, batch, state: CarriedState
    ) -> tuple[torch.Tensor, Grads, CarriedState]:
        """The same loss, one hand-derived gradient per named parameter, and the final state."""
        raise NotImplementedError(f"{type(self).__name__} has no hand-derived backward pass")

    def batch_weight(self, batch) -> int:
        """What the batch counts for in the epoch's mean training loss (its rows, its tokens)."""
        raise NotImplementedError

    def record_validation(self, batch, state: CarriedState) -> CarriedState:
        """Log one validation batch's metrics; returns the final state."""
        raise NotImplementedError

    def initial_state(self, batch) -> CarriedState:
        """The state an epoch's first training batch starts from: none, unless a model has one."""
        return None

    def reference_loss(self, batch, state: CarriedState) -> torch.Tensor:
        """What the gradient check differentiates with autograd: the training loss, unless that
        draws its random numbers differently from the hand forward (the char-RNN's dropout)."""
        return self.loss(batch, state)[0]

    def not_in_tensorboard(self) -> set[str]:
        """The metrics this model logs for metrics.json only, kept out of TensorBoard's curves
        (`handgrad.run.tensorboard_logger`): none unless a model says so."""
        return set()

    # --- the carried state ---------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        self.rows_continue = getattr(self.trainer.datamodule, "rows_continue", False)

    def start_state(self, batch) -> CarriedState:
        """The state the next training batch starts from: the carried one, else the initial one
        (written out, not None, so a compiled step sees the same kind of input at every batch)."""
        carried = self.epoch.carried_state
        return self.initial_state(batch) if carried is None else carried

    def on_train_epoch_start(self) -> None:
        """A new epoch: its state from `initial_state`, its sums and clock from zero. (Resumed
        mid-epoch, Lightning skips this hook and the checkpoint's epoch goes on.)"""
        self.epoch = TrainingEpoch()

    def on_validation_epoch_start(self) -> None:
        self.validation_state = None

    def validation_step(self, batch, batch_idx):
        final = self.record_validation(batch, self.validation_state)
        if self.rows_continue:
            self.validation_state = final

    # --- training ------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        """One optimization step in the configured backward mode; returns the loss.

        In autograd mode Lightning does backward and step with the returned loss; in hand mode
        `hand_step` has already stepped the optimizer.
        """
        self.epoch.start_clock()
        state = self.start_state(batch)
        if self.automatic_optimization:
            loss, final = self.training_loss(batch, state)
        else:
            loss, final = self.hand_step(batch, state)
        if self.rows_continue:
            self.epoch.carried_state = detach_state(final)
        self.epoch.loss.update(loss, self.batch_weight(batch))
        return loss

    def hand_step(self, batch, state: CarriedState) -> tuple[torch.Tensor, CarriedState]:
        """Hand-derived gradients into `.grad`, then the optimizer step.

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
        optimizer = self.optimizers()
        with torch.no_grad():
            loss, grads, final = self.training_hand_pass(batch, state)
        if self.trainer.world_size > 1:
            grads = mean_across_ranks(grads)
        for name, param in self.named_parameters():
            param.grad = grads[name].to(param.dtype)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss, final

    def on_train_batch_start(self, batch, batch_idx) -> None:
        self.step_scheduler_per_step()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.epoch.stop_clock()

    def gradient_pair(self, batch) -> tuple[tuple[torch.Tensor, Grads], tuple[torch.Tensor, Grads]]:
        """What the gradient check compares, on `batch` from the state the next training step
        would start from: (loss, grads) by autograd through `reference_loss`, and (loss, grads)
        by the hand pass training runs (compiled with `compile: true`). Both sides start from the
        same state of the random number generator, so dropout draws the same masks on both; the
        generator then moves on as one hand-mode step moves it. A parameter autograd does not
        reach gets a zero gradient."""
        params = {name: p for name, p in self.named_parameters() if p.requires_grad}
        state = self.start_state(batch)
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.enable_grad():  # its draws are undone
            loss = self.reference_loss(batch, state)
            auto = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        auto_grads = {
            name: torch.zeros_like(param) if grad is None else grad
            for (name, param), grad in zip(params.items(), auto, strict=True)
        }
        with torch.no_grad():
            hand_loss, hand_grads, _ = self.training_hand_pass(batch, state)
        return (loss.detach(), auto_grads), (hand_loss, hand_grads)

    def is_logging_step(self) -> bool:
        """True on the steps Lightning writes step metrics (every `trainer.log_every_n_steps`).

        Call before the optimizer step. A `self.log` call can cost more than a whole step of the
        small models (docs/benchmarks.md), and Lightning drops what is logged on other steps, so
        step metrics are only logged on these steps.
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
        groups = param_groups(
            self.named_parameters(), self.lr_by_param, self.decay, embedding_tables(self)
        )
        optimizer = self.optimizer_factory(groups)
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        config = {"scheduler": scheduler, "name": "train/lr"}
        if self.automatic_optimization:  # Lightning reads these only there (and warns otherwise)
            config |= {
                "interval": steps_per(scheduler),
                "monitor": self.scheduler_monitor,
                "strict": False,  # epochs without validation leave the learning rate alone
            }
        return {"optimizer": optimizer, "lr_scheduler": config}

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Nothing: `on_train_batch_start` steps a per-step scheduler, `on_train_epoch_end` a
        per-epoch one, in both backward modes.

        Lightning's own stepping skips plateau schedulers at the end of an epoch that was resumed
        mid-way, so a resumed run would cut its learning rate later than a straight one.
        """

    def step_scheduler_per_step(self) -> None:
        """Before each optimizer step, a per-step scheduler (`interval = "step"`, e.g.
        `optim/schedules.py`'s WarmupCosine) is stepped until its step count is the trainer's
        global_step, the index of the step about to run: optimizer step i trains with the
        schedule's lr at i, and between steps the optimizer holds the lr the latest step trained
        with (what `callbacks.LearningRate` logs at an epoch's end). Counting up to global_step,
        not once per batch, keeps it right under gradient accumulation and after a resume from
        any point (its count is in the checkpoint). On the logging steps
        (`trainer.log_every_n_steps`) the lr is logged as `train/lr` (`train/lr/pg<i>` per
        parameter group when there are several, as LearningRate names them)."""
        if self.scheduler_factory is None:
            return
        scheduler = self.lr_schedulers()
        if steps_per(scheduler) != "step":
            return
        while scheduler.last_epoch < self.global_step:
            scheduler.step()
        if self.is_logging_step():
            groups = self.optimizers().param_groups
            if len(groups) == 1:
                metrics = {"train/lr": groups[0]["lr"]}
            else:
                metrics = {f"train/lr/pg{i}": group["lr"] for i, group in enumerate(groups, 1)}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.global_step)

    def on_train_epoch_end(self) -> None:
        """Log `time/compile_s` (with `compile: true`) and step a per-epoch scheduler once per
        epoch (it holds the checkpoint's lr state; Lightning saves it). A plateau scheduler steps
        on the monitored metric of the latest validation, and an epoch before the first
        validation leaves the learning rate alone."""
        if self.compile_enabled:
            seconds = compile_seconds() - self.compile_seconds_at_start
            self.log("time/compile_s", seconds, sync_dist=True, reduce_fx="max")
        if self.scheduler_factory is None:
            return
        scheduler = self.lr_schedulers()
        if steps_per(scheduler) == "step":
            return
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step()
        elif self.scheduler_monitor in self.trainer.callback_metrics:
            scheduler.step(self.trainer.callback_metrics[self.scheduler_monitor])

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


def steps_per(scheduler) -> str:
    """How often `scheduler` steps: "step" (every optimizer step) when its class says
    `interval = "step"`, else "epoch" (torch's schedulers, stepped once per epoch here)."""
    return getattr(scheduler, "interval", "epoch")


def _step_count(loop_state: dict, backward: str) -> dict:
    """Where a fit loop's state counts the optimizer steps (its global_step) in `backward` mode:
    hand mode is Lightning's manual optimization, autograd its automatic one."""
    if backward == "hand":
        return loop_state["epoch_loop.manual_optimization.optim_step_progress"]
    return loop_state["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"]
