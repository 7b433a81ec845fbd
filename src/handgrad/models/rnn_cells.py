"""The char-RNN's networks: tokens (T x B) and a state in, logits (T x B x V) and the last state
out, each with `trace` (the forward written out, keeping what the backward needs) and
`hand_backward` (one gradient per parameter from dL/dlogits).

`ScratchRNN` is a one-layer RNN written out, with its hand-derived backward in
`handgrad.grads.scratch_rnn`; `FusedRNN` is torch's fused nn.RNN / nn.GRU / nn.LSTM with a linear
head, whose hand-derived backward (`handgrad.grads.stacked_rnn`) runs on the fused module's own
parameters: a checkpoint trains on in either backward mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from handgrad.grads import rnn_dropout
from handgrad.grads.activations import ACTIVATIONS
from handgrad.grads.rnn_dropout import masked
from handgrad.grads.scratch_rnn import rnn_backward
from handgrad.grads.stacked_rnn import LayerTape, StackTape, stacked_rnn_backward, time_step

FUSED_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
# The names the config may give (cell, activation, dropout_kind): handgrad.settings.model.
# torch's fused kernels, one per cell (nn.RNN's by its nonlinearity), as nn.RNN etc. call them
FUSED_KERNELS = {
    "lstm": torch.lstm,
    "gru": torch.gru,
    "rnn_tanh": torch.rnn_tanh,
    "rnn_relu": torch.rnn_relu,
}

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
    connections only), so it regularises a one-layer network too. `dropout_kind`: `standard`
    draws a fresh mask at every time step, `locked` one mask per sequence and unit, shared by
    all its time steps (AWD-LSTM's LockedDropout).

    Input: the one-hot vector of each token (d2l's choice; the cell's first input weights then act
    as an embedding), or a learned nn.Embedding of `embedding_dim` when that is set. The state is
    torch's: h (layers x B x H), or (h, c) for the LSTM; None means zeros.

    AWD-LSTM's other regularisers (`grads/rnn_dropout.py` has their math): `weight_drop` drops
    entries of each layer's hidden-to-hidden matrix W_hh (DropConnect: one mask per training step,
    the same for every time step), `embedding_dropout` drops whole rows of the embedding (every
    occurrence of a dropped character gets a zero input vector; needs `embedding_dim`).

    `forward` runs torch's fused kernels: the module itself, or in training with weight drop or
    locked dropout the kernel one layer at a time on the dropped W_hh (as AWD-LSTM's WeightDrop
    does; the parameters stay the module's, with torch's names, so checkpoints are unchanged).
    `trace` is the same math written out step by step (hand mode), keeping what `hand_backward`
    (`grads.stacked_rnn`) needs. Both draw the same masks from the global RNG, in one order (see
    `trace`).
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
        weight_drop: float = 0.0,
        dropout_kind: str = "standard",
        embedding_dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.weight_drop = weight_drop
        self.locked = dropout_kind == "locked"
        self.embedding_dropout = embedding_dropout
        self.kernel = f"rnn_{activation}" if cell == "rnn" else cell
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
        embedding_mask = self.embedding_mask()
        if self.embedding is None:
            inputs = F.one_hot(tokens, self.vocab_size).to(self.head.weight.dtype)
        else:
            inputs = F.embedding(tokens, masked(self.embedding.weight, embedding_mask))
        if self.training and (self.weight_drop > 0 or (self.locked and self.dropout_p() > 0)):
            outputs, state = self.layer_by_layer(inputs, state)
        else:
            outputs, state = self.rnn(inputs, state)
            outputs = self.output_dropout(outputs)
        return self.head(outputs), state

    def layer_by_layer(self, inputs: torch.Tensor, state: State | None):
        """The last layer's outputs, dropped out, and the final state: torch's fused kernel run
        one layer at a time, each on its W_hh ⊙ M_w (weight drop), each layer's outputs times
        its dropout mask (standard or locked); the masks drawn as `trace` draws them."""
        finals = []
        for start, (W_ih, W_hh, b_ih, b_hh) in zip(
            self.layer_starts(state, inputs.shape[1]), self.rnn.all_weights, strict=True
        ):
            dropped = masked(W_hh, self.weight_mask(W_hh))
            outputs, final = fused_layer(self.kernel, inputs, start, [W_ih, dropped, b_ih, b_hh])
            inputs = masked(outputs, self.dropout_mask(outputs))
            finals.append(final)
        return inputs, torch_state(finals)

    def trace(self, tokens: torch.Tensor, state: State | None = None):
        """Logits, the final state and the tape of `forward`'s math, written out layer by layer and
        step by step (`grads.stacked_rnn` has the equations).

        In training, the masks are drawn from the global RNG as F.dropout draws them, in this order
        (the order `forward` draws them in): embedding dropout's row mask m (V x 1); then layer by
        layer, first layer first, weight drop's mask M_w^l of W_hh^l (kH x H), then the dropout
        mask M^l of the layer's outputs (T x B x H, as torch's fused module draws between its
        layers and nn.Dropout before the head; locked: 1 x B x H). A mask whose p is 0 is not
        drawn. So a run's masks follow its seed, and a resumed run (the RNG state is in the
        checkpoint) draws the ones a straight run draws.
        """
        embedding_mask = self.embedding_mask()
        inputs = None  # one-hot: X⁰ W_ihᵀ is a lookup of W_ih's columns
        if self.embedding is not None:
            inputs = F.embedding(tokens, masked(self.embedding.weight, embedding_mask))
        layers, finals = [], []
        for start, (W_ih, W_hh, b_ih, b_hh) in zip(
            self.layer_starts(state, tokens.shape[1]), self.rnn.all_weights, strict=True
        ):
            if inputs is None:
                projected = F.embedding(tokens, W_ih.T + b_ih)  # onehot(x_t) W_ihᵀ + b_ih: row x_t
            else:
                projected = F.linear(inputs, W_ih, b_ih)
            hh_mask = self.weight_mask(W_hh)
            outputs, saved, final = self.through_time(projected, start, masked(W_hh, hh_mask), b_hh)
            mask = self.dropout_mask(outputs)
            layers.append(LayerTape(inputs, start, outputs, saved, mask, hh_mask))
            finals.append(final)
            inputs = masked(outputs, mask)
        tape = StackTape(tokens, layers, inputs, embedding_mask)
        return self.head(inputs), torch_state(finals), tape

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

    def dropout_p(self) -> float:
        return self.output_dropout.p

    def dropout_is_on(self) -> bool:
        """Whether a training forward draws any mask (dropout, weight drop, embedding dropout)."""
        return self.training and (
            self.dropout_p() > 0 or self.weight_drop > 0 or self.embedding_mask_drawn()
        )

    def dropout_mask(self, outputs: torch.Tensor) -> torch.Tensor | None:
        """What a layer's outputs H (T x B x H) are multiplied by: each entry 0 or 1/(1 - p), one
        per entry (standard) or one per sequence and unit (locked: 1 x B x H, broadcast over
        time); None when off."""
        if not (self.training and self.dropout_p() > 0):
            return None
        shape = (1, *outputs.shape[1:]) if self.locked else None
        return rnn_dropout.dropout_mask(outputs, self.dropout_p(), shape)

    def weight_mask(self, W_hh: torch.Tensor) -> torch.Tensor | None:
        """Weight drop's mask M_w of a layer's W_hh (kH x H), for every time step; None when off."""
        if not (self.training and self.weight_drop > 0):
            return None
        return rnn_dropout.dropout_mask(W_hh, self.weight_drop)

    def embedding_mask_drawn(self) -> bool:
        return self.training and self.embedding_dropout > 0 and self.embedding is not None

    def embedding_mask(self) -> torch.Tensor | None:
        """Embedding dropout's mask m of the embedding's rows (V x 1); None when off."""
        if not self.embedding_mask_drawn():
            return None
        weight = self.embedding.weight
        return rnn_dropout.dropout_mask(weight, self.embedding_dropout, (weight.shape[0], 1))

    def hand_backward(self, tape: StackTape, grad_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """One gradient per parameter from dL/dO (T x B x V): `grads.stacked_rnn`."""
        weights = self.rnn.all_weights
        return stacked_rnn_backward(self.time_step, tape, grad_logits, weights, self.head.weight)


@torch.compiler.disable  # run eagerly under model.compile: Inductor cannot compile these kernels
def fused_layer(kernel: str, inputs: torch.Tensor, start: tuple, weights: list[torch.Tensor]):
    """One layer of torch's fused kernel (`FUSED_KERNELS`) on `weights` = [W_ih, W_hh, b_ih,
    b_hh], as nn.LSTM etc. call it on their own: the outputs (T x B x H) and the final state, a
    tuple (h,) or (h, c) of B x H each, from `start`, the same."""
    hx = tuple(part.unsqueeze(0) for part in start)  # one layer's torch state: 1 x B x H each
    # has_biases, num_layers, dropout, train, bidirectional, batch_first
    settings = (True, 1, 0.0, True, False, False)
    outputs, *final = FUSED_KERNELS[kernel](
        inputs, hx if kernel == "lstm" else hx[0], weights, *settings
    )
    return outputs, tuple(part[0] for part in final)


def torch_state(finals: list[tuple]) -> State:
    """Per-layer final states as torch returns them: h (layers x B x H), or (h, c)."""
    parts = tuple(torch.stack(part) for part in zip(*finals, strict=True))
    return parts if len(parts) > 1 else parts[0]
