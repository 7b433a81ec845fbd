"""Character-level RNN language model (d2l 1.0 §9.5-9.6).

A batch is (X, Y), two (batch, num_steps) LongTensors with Y = X shifted by one character. The
network (`models/rnn_cells.py`: the `scratch` cell, or torch's fused `rnn`/`gru`/`lstm` with a
head) runs time-major: tokens (T x B) and a state in, logits (T x B x V) and the last state out.
The loss is the mean cross-entropy over all T*B tokens of the batch.

Hidden state: the contract's `state` (`models/handgrad_module.py`). With random sampling every
batch starts from a zero state. With sequential sampling row i of batch k+1 continues row i of
batch k, so the base carries the last state of one training batch (detached: gradients stop at
the batch boundary) into the next, resets it to zero at each training epoch start, and carries
validation's own state from zero at each validation start.

Metrics (train/ppl and val/ppl in TensorBoard; train/loss, val/loss and perf/tokens_per_s in
metrics.json) and the vocabulary in checkpoints: `models/language_model.py`, shared with the GPT.
The base class adds `weights/grad_norm` and `time/compile_s`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from handgrad.grads.cross_entropy import cross_entropy_and_grad
from handgrad.models.handgrad_module import NOT_HYPERPARAMETERS
from handgrad.models.language_model import CharLanguageModel
from handgrad.models.rnn_cells import FusedRNN, ScratchRNN, State


def mean_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss: mean cross-entropy over the T*B tokens; logits (T x B x V), targets (B x T)."""
    return F.cross_entropy(logits.flatten(0, 1), targets.T.flatten())


class CharRNN(CharLanguageModel):
    """The language model: a cell (`scratch` or a fused `rnn`/`gru`/`lstm`) and its vocabulary.

    `vocab_size` comes from the data (`model_facts`); the vocabulary itself is written into every
    checkpoint (`on_save_checkpoint`), so `handgrad.generate` needs nothing but the file.
    `num_layers`, `dropout`, `embedding_dim` and AWD-LSTM's regularisers (`weight_drop`,
    `dropout_kind`, `embedding_dropout`: `models/rnn_cells.FusedRNN`) shape the fused cells; the
    scratch cell is a one-layer RNN on one-hot input and does not use them (so
    `model=rnn model.cell=scratch` works with the default recipe's values).
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
        weight_drop: float = 0.0,
        dropout_kind: str = "standard",
        embedding_dropout: float = 0.0,
        **base_kwargs,
    ):
        super().__init__(**base_kwargs)
        self.save_hyperparameters(ignore=NOT_HYPERPARAMETERS, logger=False)
        if cell == "scratch":
            self.net = ScratchRNN(vocab_size, hidden_size, activation, init_std)
        else:
            self.net = FusedRNN(
                cell, vocab_size, hidden_size, num_layers, dropout, activation, embedding_dim,
                weight_drop, dropout_kind, embedding_dropout,
            )  # fmt: skip

    def forward(self, tokens: torch.Tensor, state: State | None = None):
        """Logits (T x B x V) and the final state for tokens (T x B)."""
        return self.net(tokens, state)

    # --- the contract --------------------------------------------------------------------------
    def initial_state(self, batch) -> State:
        """Zeros (torch's layout), written out rather than None, so a compiled training step
        sees the same kind of input at every batch (one graph, not one for an epoch's first
        batch and one for the others)."""
        return self.net.zero_state(batch[0].shape[0])

    def loss(self, batch, state: State | None) -> tuple[torch.Tensor, State]:
        """The batch's mean cross-entropy and final state from `state`, through `forward`."""
        x, y = batch
        logits, final = self(x.T, state)
        return mean_cross_entropy(logits, y), final

    def hand_loss_and_grads(self, batch, state: State | None):
        """The loss, one gradient per parameter and the final state: the forward written out
        (`net.trace`), then hand BPTT (`net.hand_backward`: `handgrad.grads.scratch_rnn` or, for
        the fused cells, `handgrad.grads.stacked_rnn`)."""
        x, y = batch
        logits, final, tape = self.net.trace(x.T, state)
        loss, grad_logits = cross_entropy_and_grad(logits, y.T)
        grads = self.net.hand_backward(tape, grad_logits)
        return loss, {f"net.{name}": grad for name, grad in grads.items()}, final

    def reference_loss(self, batch, state: State | None) -> torch.Tensor:
        """The gradient check's autograd side: the training loss (through torch's fused module),
        or with dropout on, the loss of the written-out forward (`net.trace`), which draws its
        masks as hand mode does."""
        if not (isinstance(self.net, FusedRNN) and self.net.dropout_is_on()):
            return self.loss(batch, state)[0]
        x, y = batch
        logits, _, _ = self.net.trace(x.T, state)
        return mean_cross_entropy(logits, y)
