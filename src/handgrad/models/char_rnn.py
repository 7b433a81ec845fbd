"""Character-level RNN language model (d2l 1.0 §9.5-9.6).

A batch is (X, Y), two (batch, num_steps) LongTensors with Y = X shifted by one character. The
network runs time-major: tokens (T x B) and a state in, logits (T x B x V) and the last state out.
The loss is the mean cross-entropy over all T*B tokens of the batch.

Cells: `scratch` is a one-layer RNN written out, with its hand-derived backward in
`handgrad.grads.scratch_rnn`; `rnn`, `gru`, `lstm` are torch's fused nn.RNN / nn.GRU / nn.LSTM
with a linear head, whose hand-derived backward (`handgrad.grads.stacked_rnn`) runs on the fused
module's own parameters: a checkpoint trains on in either backward mode.

Hidden state: with random sampling every batch starts from a zero state. With sequential sampling
row i of batch k+1 continues row i of batch k, so the last state of one training batch (detached:
gradients stop at the batch boundary) is the first state of the next; it is reset to zero at
each training epoch start, and validation carries its own state, reset at each validation start.
`training_loss` and `hand_loss_and_grads` both start from `self.train_state` and leave it alone
(they only record the batch's final state); `training_step` carries it on after the step, so a
gradient check sees the same initial state in both.

Metrics, at each epoch's end: `train/ppl`, `val/ppl` (exp of the token-weighted mean
cross-entropy over the epoch; the sums are synced across processes), in TensorBoard and in
`metrics.json`; `train/loss`, `val/loss` (those mean cross-entropies) and `perf/tokens_per_s`
(training tokens over the seconds from the epoch's first batch start to its last batch end, less
the seconds torch.compile spent compiling in between) in `metrics.json` only: the cross-entropy is
the perplexity's log, one curve in two units (and on a chart beside the regression models' squared
errors, a mix of units), and the throughput is wall-clock time, not a training curve. The base
class adds `weights/grad_norm` and `time/compile_s`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from handgrad.errors import require
from handgrad.grads.activations import ACTIVATIONS
from handgrad.grads.cross_entropy import cross_entropy_and_grad
from handgrad.grads.scratch_rnn import rnn_backward
from handgrad.grads.stacked_rnn import LayerTape, StackTape, stacked_rnn_backward, time_step
from handgrad.models.compiled import compile_seconds
from handgrad.models.handgrad_module import NOT_HYPERPARAMETERS, HandgradModule, WeightedMean

FUSED_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
CELLS = ("scratch", *FUSED_CELLS)
RECURRENT_ACTIVATIONS = ("tanh", "relu")  # what nn.RNN offers; gru and lstm are tanh only

State = torch.Tensor | tuple[torch.Tensor, ...]


class ScratchRNN(nn.Module):
    """H_t = f(X_t W_xh + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q, f = tanh or relu.

    X_t is the one-hot row of token x_t, so X_t W_xh is the row W_xh[x_t]: the input projection is
    an embedding lookup (`F.embedding`), not a (V-wide) matrix product. Its autograd backward adds
    the rows in a fixed order, so training is reproducible on several CPU threads (the backward of
    plain indexing, W_xh[tokens], adds them in whatever order the threads finish).
    Weights ~ N(0, init_std^2), biases 0. The state is H (B x H), zero when none is given.
    """

    def __init__(self, vocab_size: int, hidden_size: int, activation: str, init_std: float):
        super().__init__()
        self.activation = activation
        self.W_xh = nn.Parameter(init_std * torch.randn(vocab_size, hidden_size))
        self.W_hh = nn.Parameter(init_std * torch.randn(hidden_size, hidden_size))
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hq = nn.Parameter(init_std * torch.randn(hidden_size, vocab_size))
        self.b_q = nn.Parameter(torch.zeros(vocab_size))

    def zero_state(self, batch_size: int) -> torch.Tensor:
        return self.W_hh.new_zeros(batch_size, self.W_hh.shape[0])

    def hidden_states(self, tokens: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        """H_1..H_T (T x B x H) for tokens (T x B) from the initial state h0 (B x H)."""
        f = ACTIVATIONS[self.activation]
        inputs = F.embedding(tokens, self.W_xh) + self.b_h  # X_t W_xh + b_h for every t at once
        hidden, hiddens = h0, []
        for x in inputs:
            hidden = f(x + hidden @ self.W_hh)
            hiddens.append(hidden)
        return torch.stack(hiddens)

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None = None):
        logits, final, _ = self.trace(tokens, state)
        return logits, final

    def trace(self, tokens: torch.Tensor, state: torch.Tensor | None = None):
        """Logits, the final state and what `hand_backward` needs: (tokens, H_0, H_1..H_T)."""
        h0 = self.zero_state(tokens.shape[1]) if state is None else state
        hiddens = self.hidden_states(tokens, h0)
        return hiddens @ self.W_hq + self.b_q, hiddens[-1], (tokens, h0, hiddens)

    def hand_backward(self, tape: tuple, grad_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """One gradient per parameter from dL/dO (T x B x V): `grads.scratch_rnn`."""
        tokens, h0, hiddens = tape
        return rnn_backward(tokens, h0, hiddens, grad_logits, self.W_hh, self.W_hq, self.activation)


class FusedRNN(nn.Module):
    """torch's nn.RNN / nn.GRU / nn.LSTM (num_layers) + a linear head.

    `dropout` zeroes activations between stacked layers (torch's own option) and on the last
    layer's outputs before the head (Zaremba et al. 2014: dropout on the non-recurrent
    connections only), so it regularises a one-layer network too.

    Input: the one-hot vector of each token (d2l's choice; the cell's first input weights then act
    as an embedding), or a learned nn.Embedding of `embedding_dim` when that is set. The state is
    torch's: h (layers x B x H), or (h, c) for the LSTM; None means zeros.

    `forward` runs torch's fused module; `trace` is the same math written out step by step (hand
    mode), keeping what `hand_backward` (`grads.stacked_rnn`) needs.
    """

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float,
        activation: str,
        embedding_dim: int | None,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if embedding_dim else None
        extra = {"nonlinearity": activation} if cell == "rnn" else {}
        between_layers = dropout if num_layers > 1 else 0.0  # torch warns on one layer
        self.rnn = FUSED_CELLS[cell](
            embedding_dim or vocab_size, hidden_size, num_layers, dropout=between_layers, **extra
        )
        self.output_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.time_step = time_step(cell, activation)

    def forward(self, tokens: torch.Tensor, state: State | None = None):
        if self.embedding is None:
            inputs = F.one_hot(tokens, self.vocab_size).to(self.head.weight.dtype)
        else:
            inputs = self.embedding(tokens)
        outputs, state = self.rnn(inputs, state)
        return self.head(self.output_dropout(outputs)), state

    def trace(self, tokens: torch.Tensor, state: State | None = None):
        """Logits, the final state and the tape of `forward`'s math, written out layer by layer and
        step by step (`grads.stacked_rnn` has the equations).

        Dropout draws its masks from the global RNG as F.dropout does, one per layer's outputs,
        first layer first, so a run's masks follow its seed and resume with its RNG state.
        """
        inputs = None if self.embedding is None else self.embedding(tokens)  # None: one-hot
        layers, finals = [], []
        for start, (W_ih, W_hh, b_ih, b_hh) in zip(
            self.layer_starts(state, tokens.shape[1]), self.rnn.all_weights, strict=True
        ):
            if inputs is None:
                projected = F.embedding(tokens, W_ih.T + b_ih)  # onehot(x_t) W_ihᵀ + b_ih: row x_t
            else:
                projected = F.linear(inputs, W_ih, b_ih)
            outputs, saved, final = self.through_time(projected, start, W_hh, b_hh)
            mask = self.dropout_mask(outputs)
            layers.append(LayerTape(inputs, start, outputs, saved, mask))
            finals.append(final)
            inputs = outputs if mask is None else outputs * mask
        return self.head(inputs), torch_state(finals), StackTape(tokens, layers, inputs)

    def through_time(self, projected: torch.Tensor, start: tuple, W_hh, b_hh):
        """One layer over T steps from P_1..P_T (T x B x kH): H_1..H_T (T x B x H), what each
        step kept, and the last state."""
        state, outputs, saved = start, [], []
        for inputs in projected:
            state, kept = self.time_step.forward(inputs, state, W_hh, b_hh)
            outputs.append(state[0])
            saved.append(kept)
        return torch.stack(outputs), saved, state

    def zero_state(self, batch_size: int) -> State:
        """torch's zero state: h (layers x B x H), or (h, c) for the LSTM."""
        rnn = self.rnn
        parts = tuple(
            self.head.weight.new_zeros(rnn.num_layers, batch_size, rnn.hidden_size)
            for _ in range(self.time_step.state_size)
        )
        return parts if len(parts) > 1 else parts[0]

    def layer_starts(self, state: State | None, batch_size: int) -> list[tuple]:
        """torch's state (each part layers x B x H; None: zeros) as one tuple per layer."""
        if state is None:
            state = self.zero_state(batch_size)
        return list(zip(*(state if isinstance(state, tuple) else (state,)), strict=True))

    def dropout_is_on(self) -> bool:
        return self.training and self.output_dropout.p > 0

    def dropout_mask(self, outputs: torch.Tensor) -> torch.Tensor | None:
        """What F.dropout multiplies `outputs` by (each entry 0 or 1/(1 - p)); None when off."""
        if not self.dropout_is_on():
            return None
        return F.dropout(torch.ones_like(outputs), self.output_dropout.p)

    def hand_backward(self, tape: StackTape, grad_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """One gradient per parameter from dL/dO (T x B x V): `grads.stacked_rnn`."""
        weights = self.rnn.all_weights
        return stacked_rnn_backward(self.time_step, tape, grad_logits, weights, self.head.weight)


def torch_state(finals: list[tuple]) -> State:
    """Per-layer final states as torch returns them: h (layers x B x H), or (h, c)."""
    parts = tuple(torch.stack(part) for part in zip(*finals, strict=True))
    return parts if len(parts) > 1 else parts[0]


class TrainingEpoch:
    """What a training epoch carries from one batch to the next: the hidden state of sequential
    sampling (detached), the token-weighted loss sums, the tokens and seconds trained so far.

    `perf/tokens_per_s` = tokens / seconds, the seconds counted from the first batch's start to
    the last batch's end, less the seconds torch.compile spent compiling in between (after a
    resume: the seconds before the interrupt plus those after).
    """

    def __init__(self):
        self.carried_state: State | None = None
        self.cross_entropy = WeightedMean()  # per token
        self.seconds = 0.0
        self._clock: float | None = None  # perf_counter() minus the seconds already counted
        self._compile_clock = 0.0  # compile_seconds() when the clock started

    def start_clock(self) -> None:
        if self._clock is None:
            self._clock = time.perf_counter() - self.seconds
            self._compile_clock = compile_seconds()

    def stop_clock(self) -> None:
        compiling = compile_seconds() - self._compile_clock
        self.seconds = time.perf_counter() - self._clock - compiling

    def tokens_per_second(self) -> float:
        return self.cross_entropy.count / max(self.seconds, 1e-9)

    def state_dict(self) -> dict:
        """Plain tensors and numbers (a tuple state, the LSTM's (h, c), becomes a list)."""
        state = self.carried_state
        return {
            "carried_state": list(state) if isinstance(state, tuple) else state,
            "loss_total": self.cross_entropy.total,
            "tokens": self.cross_entropy.count,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        carried = state["carried_state"]
        self.carried_state = tuple(carried) if isinstance(carried, list) else carried
        self.cross_entropy = WeightedMean(state["loss_total"], state["tokens"])
        self.seconds = state["seconds"]
        self._clock = None


def mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss: mean cross-entropy over the T*B tokens; logits (T x B x V), targets (B x T)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.T.flatten())


def detach_state(state: State) -> State:
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class CharRNN(HandgradModule):
    """The language model: a cell (`scratch` or a fused `rnn`/`gru`/`lstm`) and its vocabulary.

    `vocab_size` comes from the data (`model_facts`); the vocabulary itself is written into every
    checkpoint (`on_save_checkpoint`), so `handgrad.generate` needs nothing but the file.
    `num_layers`, `dropout` and `embedding_dim` shape the fused cells; the scratch cell is a
    one-layer RNN on one-hot input and does not use them (so `model=rnn model.cell=scratch`
    works with the default recipe's values).
    """

    def __init__(
        self,
        vocab_size: int,
        cell: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        activation: str = "tanh",
        embedding_dim: int | None = None,
        init_std: float = 0.01,
        **base_kwargs,
    ):
        super().__init__(**base_kwargs)
        _validate(cell, activation, hidden_size, num_layers, dropout)
        self.save_hyperparameters(ignore=NOT_HYPERPARAMETERS, logger=False)
        if cell == "scratch":
            self.net = ScratchRNN(vocab_size, hidden_size, activation, init_std)
        else:
            self.net = FusedRNN(
                cell, vocab_size, hidden_size, num_layers, dropout, activation, embedding_dim
            )
        self.carry_state = False  # set from the data's sampling in `setup`
        self.epoch = TrainingEpoch()
        self.val_state: State | None = None
        self.final_state: State | None = None  # the last training batch's final state

    def forward(self, tokens: torch.Tensor, state: State | None = None):
        """Logits (T x B x V) and the final state for tokens (T x B)."""
        return self.net(tokens, state)

    def loss_and_state(
        self, batch, state: State | None, forward: Callable | None = None
    ) -> tuple[torch.Tensor, State]:
        """The batch's mean cross-entropy and final state from `state`, through `forward` (the
        eager module by default; the training step passes `training_forward`)."""
        x, y = batch
        logits, final = (forward or self)(x.T, state)
        return mean_cross_entropy(logits, y), final

    # --- the two backward modes: both start from self.train_state and leave it alone -----------
    def start_state(self, batch_size: int) -> State:
        """The state the next training batch starts from: the carried one, else zeros, written
        out rather than None, so a compiled training step sees the same kind of input at every
        batch (one graph, not one for an epoch's first batch and one for the others)."""
        return self.net.zero_state(batch_size) if self.train_state is None else self.train_state

    def training_loss(self, batch) -> torch.Tensor:
        start = self.start_state(batch[0].shape[0])
        loss, self.final_state = self.loss_and_state(batch, start, self.training_forward)
        return loss

    def hand_loss_and_grads(self, batch):
        x, y = batch
        start = self.start_state(x.shape[0])
        loss, grads, self.final_state = self.training_hand_pass(x.T, y, start)
        return loss, grads

    def hand_pass(self, tokens: torch.Tensor, targets: torch.Tensor, state: State | None):
        """The loss, one gradient per parameter and the final state, for tokens (T x B), targets
        (B x T) and the initial state: the forward written out (`net.trace`), then hand BPTT
        (`net.hand_backward`: `handgrad.grads.scratch_rnn` or, for the fused cells,
        `handgrad.grads.stacked_rnn`)."""
        logits, final, tape = self.net.trace(tokens, state)
        loss, grad_logits = cross_entropy_and_grad(logits, targets.T)
        grads = self.net.hand_backward(tape, grad_logits)
        return loss, {f"net.{name}": grad for name, grad in grads.items()}, final

    def reference_loss(self, batch) -> torch.Tensor:
        """The gradient check's autograd side: the training loss (through torch's fused module),
        or with dropout on, the loss of the written-out forward (`net.trace`), which draws its
        masks as hand mode does."""
        if not (isinstance(self.net, FusedRNN) and self.net.dropout_is_on()):
            return self.training_loss(batch)
        x, y = batch
        logits, _, _ = self.net.trace(x.T, self.start_state(x.shape[0]))
        return mean_cross_entropy(logits, y)

    # --- training and validation loops ---------------------------------------------------------
    # The epoch's training state (carried hidden state, loss sums, token and time counters) lives in
    # `self.epoch`, is reset when an epoch starts and travels in every checkpoint, so a run
    # interrupted mid-epoch resumes exactly where it stopped (Lightning then skips
    # `on_train_epoch_start`).
    def setup(self, stage: str) -> None:
        self.carry_state = self.trainer.datamodule.sampling == "sequential"

    @property
    def train_state(self) -> State | None:
        """The state the next training batch starts from (None: zeros)."""
        return self.epoch.carried_state

    @train_state.setter
    def train_state(self, state: State | None) -> None:
        self.epoch.carried_state = state

    def on_train_epoch_start(self) -> None:
        self.epoch = TrainingEpoch()

    def training_step(self, batch, batch_idx):
        self.epoch.start_clock()
        loss = self.training_step_loss(batch)
        if self.carry_state:
            self.train_state = detach_state(self.final_state)
        self.epoch.cross_entropy.update(loss.detach(), batch[1].numel())
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.epoch.stop_clock()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        self.log_cross_entropy("train", self.epoch.cross_entropy)
        tokens_per_s = self.epoch.tokens_per_second()
        self.log("perf/tokens_per_s", tokens_per_s, sync_dist=True, reduce_fx="sum")

    def not_in_tensorboard(self) -> set[str]:
        return {"train/loss", "val/loss", "perf/tokens_per_s"}

    def on_validation_epoch_start(self) -> None:
        self.val_state = None
        self.val_cross_entropy = WeightedMean()  # per token

    def validation_step(self, batch, batch_idx):
        loss, final = self.loss_and_state(batch, self.val_state)
        if self.carry_state:
            self.val_state = final
        self.val_cross_entropy.update(loss, batch[1].numel())

    def on_validation_epoch_end(self) -> None:
        self.log_cross_entropy("val", self.val_cross_entropy)

    def log_cross_entropy(self, stage: str, mean_ce: WeightedMean) -> None:
        """`<stage>/loss` = token-weighted mean CE of the epoch, `<stage>/ppl` = exp of it."""
        ce = mean_ce.compute(self.trainer.strategy)  # under DDP: every rank's sums
        # sync_dist averages equal values (a no-op) and tells Lightning they are synced (no warning)
        self.log(f"{stage}/loss", ce, sync_dist=True)
        self.log(f"{stage}/ppl", ce.exp(), prog_bar=True, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the vocabulary (a plain list of tokens) so generation needs nothing else, and the
        epoch's training state (the base class; each rank carries its own rows)."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["vocab"] = self.trainer.datamodule.vocab.to_list()
        checkpoint["tokenizer"] = self.trainer.datamodule.vocab.tokenizer


def _validate(cell, activation, hidden_size, num_layers, dropout) -> None:
    """One ConfigError per bad key, naming the key, its value and what is allowed."""
    require(cell in CELLS, f"model.cell={cell!r} is not one of {', '.join(CELLS)}")
    require(
        activation in RECURRENT_ACTIVATIONS,
        f"model.activation={activation!r} is not one of {', '.join(RECURRENT_ACTIVATIONS)}",
    )
    require(
        activation == "tanh" or cell in ("scratch", "rnn"),
        f"model.activation={activation} needs model.cell=scratch or rnn ({cell} uses tanh)",
    )
    require(hidden_size >= 1, f"model.hidden_size={hidden_size!r} must be >= 1")
    require(num_layers >= 1, f"model.num_layers={num_layers!r} must be >= 1")
    require(0 <= dropout < 1, f"model.dropout={dropout!r} must be in [0, 1)")
