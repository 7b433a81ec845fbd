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

from handgrad.grads.activations import ACTIVATIONS
from handgrad.grads.scratch_rnn import rnn_backward
from handgrad.grads.stacked_rnn import LayerTape, StackTape, stacked_rnn_backward, time_step

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
