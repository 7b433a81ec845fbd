"""The reference loops: the project's recipes written as plain PyTorch, no Lightning, no Hydra.

Each loop takes a spec (a dict of plain values: data, model, optimizer, epochs, built from a
composed config by `benchmarks.runner.plain_spec`), trains the same math the project trains, and
returns its step count and seconds, its final training loss (the last epoch's mean, as the
project logs `train/loss`) and its last validation metric. They are the yardstick of
`python -m benchmarks`, and the shortest readable version of each recipe.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def make_optimizer(spec: dict, params) -> torch.optim.Optimizer:
    return getattr(torch.optim, spec["optimizer"])(params, **spec["optimizer_kwargs"])


def plain_linreg(spec: dict) -> dict:
    """Full-batch linear regression: y_hat = x w + b, mean squared error, torch.optim. Seeded as
    the project seeds a run, so both train on the same numbers from the same start: the data from
    a generator seeded with `data_seed` (x ~ U[0, 1), then the noise), w from the global
    generator seeded with `seed`. Returns the last epoch's mean loss and the last validation's
    (on the training points: the recipe holds none out)."""
    gen = torch.Generator().manual_seed(spec["data_seed"])
    x = torch.rand(spec["n_samples"], len(spec["w_true"]), generator=gen)
    noise = spec["noise_std"] * torch.randn(spec["n_samples"], 1, generator=gen)
    y = x @ torch.tensor(spec["w_true"]).unsqueeze(1) + spec["b_true"] + noise
    torch.manual_seed(spec["seed"])
    w = (spec["init_std"] * torch.randn(x.shape[1], 1)).requires_grad_()
    b = torch.zeros(1, requires_grad=True)
    optimizer = make_optimizer(spec, [w, b])
    val_loss = None  # None: no epoch validated
    start = time.perf_counter()
    for epoch in range(spec["epochs"]):
        losses = []
        for _ in range(spec["passes"]):
            loss = F.mse_loss(x @ w + b, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
        if (epoch + 1) % spec["val_every"] == 0:
            with torch.no_grad():
                val_loss = F.mse_loss(x @ w + b, y)
    fit_s = time.perf_counter() - start
    steps = spec["epochs"] * spec["passes"]
    return {
        "fit_s": fit_s,
        "steps": steps,
        "epochs": spec["epochs"],
        "train_loss": torch.stack(losses).mean().item(),
        "val_loss": None if val_loss is None else val_loss.item(),
    }


class PlainScratchRNN(nn.Module):
    """H_t = f(W_xh[x_t] + H_{t-1} W_hh + b_h), O_t = H_t W_hq + b_q (the one-hot input product
    X_t W_xh is a row lookup; the output layer runs once over all steps)."""

    def __init__(self, vocab_size: int, hidden_size: int, activation: str, init_std: float):
        super().__init__()
        self.f = torch.tanh if activation == "tanh" else torch.relu
        self.W_xh = nn.Parameter(init_std * torch.randn(vocab_size, hidden_size))
        self.W_hh = nn.Parameter(init_std * torch.randn(hidden_size, hidden_size))
        self.b_h = nn.Parameter(torch.zeros(hidden_size))
        self.W_hq = nn.Parameter(init_std * torch.randn(hidden_size, vocab_size))
        self.b_q = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, tokens: torch.Tensor, state: torch.Tensor | None):
        hidden = tokens.new_zeros(tokens.shape[1], self.W_hh.shape[0], dtype=self.W_hh.dtype)
        hidden = hidden if state is None else state
        outputs = []
        for x in self.W_xh[tokens] + self.b_h:
            hidden = self.f(x + hidden @ self.W_hh)
            outputs.append(hidden)
        return torch.stack(outputs) @ self.W_hq + self.b_q, hidden


class PlainFusedRNN(nn.Module):
    """torch's nn.RNN / nn.GRU / nn.LSTM on one-hot inputs, dropout, then a linear head."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        hidden_size: int,
        activation: str,
        num_layers: int,
        dropout: float,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        extra = {"nonlinearity": activation} if cell == "rnn" else {}
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        between = dropout if num_layers > 1 else 0.0
        self.rnn = layer(vocab_size, hidden_size, num_layers, dropout=between, **extra)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens: torch.Tensor, state):
        outputs, state = self.rnn(F.one_hot(tokens, self.vocab_size).float(), state)
        return self.head(self.dropout(outputs)), state


class PlainAWDRNN(nn.Module):
    """AWD-LSTM's regularisers (Merity et al. 2017) around torch's fused cells, as plain PyTorch
    writes them: a learned embedding with embedding dropout (whole rows of the table: every
    occurrence of a dropped character), one single-layer nn.RNN / nn.GRU / nn.LSTM per layer run
    through `torch.func.functional_call` on its weight_hh dropped out (DropConnect, one mask per
    step for the whole sequence: AWD's WeightDrop), dropout on each layer's outputs (`locked`:
    one mask per sequence and unit, AWD's LockedDropout; `standard`: per entry), a linear head.

    Built from one seed it starts from the project's weights (the same draws in the same order),
    and it draws its masks in the project's order (`handgrad.models.rnn_cells.FusedRNN.trace`):
    the embedding's rows, then per layer its weight_hh mask and its outputs' mask."""

    def __init__(
        self,
        cell: str,
        vocab_size: int,
        hidden_size: int,
        activation: str,
        num_layers: int,
        dropout: float,
        embedding_dim: int | None,
        weight_drop: float,
        dropout_kind: str,
        embedding_dropout: float,
    ):
        super().__init__()
        self.vocab_size = vocab_size
        self.dropout, self.locked = dropout, dropout_kind == "locked"
        self.weight_drop, self.embedding_dropout = weight_drop, embedding_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_dim) if embedding_dim else None
        extra = {"nonlinearity": activation} if cell == "rnn" else {}
        layer = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[cell]
        sizes = [embedding_dim or vocab_size] + [hidden_size] * (num_layers - 1)
        self.layers = nn.ModuleList(layer(size, hidden_size, **extra) for size in sizes)
        self.head = nn.Linear(hidden_size, vocab_size)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.embedding is None:
            return F.one_hot(tokens, self.vocab_size).float()
        table = self.embedding.weight
        if self.training and self.embedding_dropout > 0:
            rows = F.dropout(table.new_ones(table.shape[0], 1), self.embedding_dropout)
            table = table * rows
        return F.embedding(tokens, table)

    def drop(self, x: torch.Tensor) -> torch.Tensor:
        """A layer's outputs (T x B x H) dropped out: per entry, or locked over time."""
        if not (self.training and self.dropout > 0):
            return x
        if self.locked:
            return x * F.dropout(x.new_ones(1, *x.shape[1:]), self.dropout)
        return F.dropout(x, self.dropout)

    def forward(self, tokens: torch.Tensor, state):
        x, finals = self.embed(tokens), []
        for k, layer in enumerate(self.layers):
            start = None if state is None else layer_state(state, k)
            weights = {}
            if self.training and self.weight_drop > 0:
                weights["weight_hh_l0"] = F.dropout(layer.weight_hh_l0, self.weight_drop)
            x, final = torch.func.functional_call(layer, weights, (x, start))
            x = self.drop(x)
            finals.append(final)
        if isinstance(finals[0], tuple):  # the LSTM's (h, c)
            return self.head(x), tuple(torch.cat(part) for part in zip(*finals, strict=True))
        return self.head(x), torch.cat(finals)


def layer_state(state, k: int):
    """Layer k's part of torch's state (layers x B x H, or an LSTM's (h, c))."""
    if isinstance(state, tuple):
        return tuple(part[k : k + 1] for part in state)
    return state[k : k + 1]


# The char-RNN's keys of the AWD-LSTM recipe, each with its value when off (before the recipe).
AWD_KEYS = {
    "embedding_dim": None,
    "weight_drop": 0.0,
    "dropout_kind": "standard",
    "embedding_dropout": 0.0,
}


def detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def read_tokens(path: str) -> tuple[torch.Tensor, int]:
    """The corpus as d2l 1.0 tokenizes it (letters and spaces, lower case) and the vocab size."""
    from handgrad.data.vocab import Vocab, preprocess  # torch only: no Lightning in plain runs

    text = preprocess(Path(path).read_text(encoding="utf-8"))
    vocab = Vocab.build(text)
    return vocab.encode(text), len(vocab)


def windows(tokens: torch.Tensor, starts: torch.Tensor, num_steps: int, batch_size: int):
    """(X, Y) batches of the windows starting at `starts`, Y = X shifted by one token."""
    for rows in starts.split(batch_size):
        positions = rows.unsqueeze(1) + torch.arange(num_steps)
        yield tokens[positions], tokens[positions + 1]


def sequential(tokens: torch.Tensor, lo: int, hi: int, spec: dict, offset: int, ragged=False):
    """d2l 0.17 seq_data_iter_sequential: batch_size rows that continue from batch to batch."""
    batch_size, num_steps = spec["batch_size"], spec["num_steps"]
    n = (hi - lo - offset - 1) // batch_size * batch_size
    xs = tokens[lo + offset : lo + offset + n].reshape(batch_size, -1)
    ys = tokens[lo + offset + 1 : lo + offset + 1 + n].reshape(batch_size, -1)
    stop = xs.shape[1] if ragged else xs.shape[1] // num_steps * num_steps
    for i in range(0, stop, num_steps):
        yield xs[:, i : i + num_steps], ys[:, i : i + num_steps]


def char_rnn_data(tokens: torch.Tensor, spec: dict):
    """(train batches for an epoch, validation batches) for the spec's split and sampling."""
    batch_size, num_steps = spec["batch_size"], spec["num_steps"]
    if spec["split"] == "d2l":  # d2l 1.0: windows 0..9,999 train (shuffled), 10,000..14,999 val

        def train_batches():
            return windows(tokens, torch.randperm(10_000), num_steps, batch_size)

        val = list(windows(tokens, torch.arange(10_000, 15_000), num_steps, batch_size))
        return train_batches, val
    n = (
        len(tokens)
        if spec["split"] == "first_tokens"
        else min(len(tokens), spec["max_tokens"] or 10**9)
    )
    val_lo = n - round(n * spec["val_fraction"])
    hi = val_lo if spec["split"] == "holdout" else spec["max_tokens"] or 10_000

    def train_batches():
        if spec["sampling"] == "sequential":
            return sequential(tokens, 0, hi, spec, int(torch.randint(0, num_steps + 1, ())))
        offset = int(torch.randint(0, num_steps, ()))
        count = (hi - offset - 1) // num_steps // batch_size * batch_size
        starts = offset + torch.randperm((hi - offset - 1) // num_steps)[:count] * num_steps
        return windows(tokens, starts, num_steps, batch_size)

    return train_batches, list(sequential(tokens, val_lo, n, spec, offset=0, ragged=True))


def plain_char_rnn(spec: dict) -> dict:
    """Char-RNN language model: cross-entropy over every token, torch.optim, clipping, state
    carried (detached) across batches with sequential sampling, fresh with random windows;
    validation every `val_every` epochs (exp of the token-weighted mean cross-entropy). Returns
    the last epoch's training cross-entropy and the last validation's perplexity. A spec with
    any of AWD_KEYS set (embedding_dim, weight_drop, dropout_kind, embedding_dropout, as the
    project's model keys) trains `PlainAWDRNN`, the AWD-LSTM recipe."""
    tokens, vocab_size = read_tokens(spec["corpus"])
    train_batches, val_batches = char_rnn_data(tokens, spec)
    awd = {key: spec.get(key, off) for key, off in AWD_KEYS.items()}  # off: as before them
    if spec["cell"] == "scratch":
        args = (vocab_size, spec["hidden_size"], spec["activation"], spec["init_std"])
        model = PlainScratchRNN(*args)
    elif awd != AWD_KEYS:
        sizes = (spec["hidden_size"], spec["activation"], spec["num_layers"], spec["dropout"])
        model = PlainAWDRNN(spec["cell"], vocab_size, *sizes, *awd.values())
    else:
        sizes = (spec["hidden_size"], spec["activation"], spec["num_layers"], spec["dropout"])
        model = PlainFusedRNN(spec["cell"], vocab_size, *sizes)
    optimizer = make_optimizer(spec, model.parameters())
    carry = spec["sampling"] == "sequential"
    steps, val_ppl = 0, None  # None: no epoch validated
    start = time.perf_counter()
    for epoch in range(spec["epochs"]):
        model.train()
        state, total, tokens = None, torch.zeros(()), 0
        for x, y in train_batches():
            logits, state = model(x.T, state)
            loss = F.cross_entropy(logits.flatten(0, 1), y.T.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if spec["clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
            optimizer.step()
            state = detach(state) if carry else None
            total += loss.detach() * y.numel()
            tokens += y.numel()
            steps += 1
        if (epoch + 1) % spec["val_every"] == 0:
            val_ppl = evaluate(model, val_batches, carry)
    fit_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "steps": steps,
        "epochs": spec["epochs"],
        "train_loss": (total / tokens).item(),  # the last epoch's token-weighted mean
        "val_ppl": None if val_ppl is None else val_ppl.item(),
    }


@torch.no_grad()
def evaluate(model: nn.Module, batches, carry: bool) -> torch.Tensor:
    model.eval()
    total, count, state = torch.zeros(()), 0, None
    for x, y in batches:
        logits, state = model(x.T, state if carry else None)
        total += F.cross_entropy(logits.flatten(0, 1), y.T.flatten(), reduction="sum")
        count += y.numel()
    model.train()
    return (total / count).exp()


PLAIN_LOOPS = {"linreg": plain_linreg, "char_rnn": plain_char_rnn}
