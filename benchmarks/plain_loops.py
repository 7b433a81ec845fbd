"""The reference loops: the project's recipes written as plain PyTorch, no Lightning, no Hydra.

Each loop takes a spec (a dict of plain values: data, model, optimizer, epochs, built from a
composed config by `benchmarks.kinds.against_plain.plain_spec`), trains the same math the project
trains, and returns its step count and seconds, its final training loss (the last epoch's mean, as
the project logs `train/loss`) and its last validation metric. They are the yardstick of
`python -m benchmarks`, and the shortest readable version of each recipe.

The language-model loops (`plain_char_rnn`, `plain_gpt`) share `fit_language_model`, which also
follows the rest of a recipe when its spec says so, as the project's Trainer does: bf16 autocast
(`precision: bf16-mixed`), the lr schedule (ReduceLROnPlateau on the validation perplexity, a
per-epoch cosine, or nanoGPT's per-step warmup + cosine), early stopping on val/ppl, and a
wall-clock budget (`max_time_s`: after the step that reaches it, one last validation, then stop);
it returns every validation's (seconds since training started, val ppl) for the time-to-quality
comparison.
"""

from __future__ import annotations

import functools
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def make_optimizer(spec: dict, params) -> torch.optim.Optimizer:
    return getattr(torch.optim, spec["optimizer"])(params, **spec["optimizer_kwargs"])


def decay_groups(model: nn.Module, decay: str):
    """The model's parameters for the optimizer. `decay` is the project's optimizer.decay: `all`
    (weight decay on every parameter), or nanoGPT's two groups: weight decay on the parameters of
    2 or more dimensions only (`matrices`), and not on nn.Embedding tables (`..._no_embeddings`)."""
    if decay == "all":
        return model.parameters()
    tables = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    decayed, other = [], []
    for param in model.parameters():
        skip = param.ndim < 2 or (decay == "matrices_no_embeddings" and id(param) in tables)
        (other if skip else decayed).append(param)
    groups = [{"params": decayed}, {"params": other, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


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
    validation every `val_every` epochs (exp of the token-weighted mean cross-entropy); the rest
    of the recipe as `fit_language_model` says. Returns the last epoch's training cross-entropy
    and the last validation's perplexity. A spec with any of AWD_KEYS set (embedding_dim,
    weight_drop, dropout_kind, embedding_dropout, as the project's model keys) trains
    `PlainAWDRNN`, the AWD-LSTM recipe."""
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

    def loss(x, y, state):  # batch-major (B x T) batches; the RNNs read them time-major
        logits, state = model(x.T, state)
        return F.cross_entropy(logits.flatten(0, 1), y.T.flatten()), state

    carry = spec["sampling"] == "sequential"
    return fit_language_model(spec, model, loss, lambda epoch: train_batches(), val_batches, carry)


class PlainGPT(nn.Module):
    """nanoGPT's `model.py` GPT (karpathy/nanoGPT, its names): token and position embeddings,
    dropout, pre-LayerNorm blocks of causal self-attention (one c_attn projection to q, k, v,
    F.scaled_dot_product_attention with is_causal and its attention dropout, c_proj, dropout) and
    a GELU MLP (c_fc to 4·n_embd, c_proj, dropout), ln_f, an lm_head without bias; nanoGPT's init
    (N(0, 0.02²), the c_proj weights N(0, (0.02/√(2·n_layer))²), zero biases). With the project's
    options nanoGPT fixes: `bias` (nanoGPT's too), `tie_weights` (nanoGPT always ties), `gelu`
    tanh | exact (nanoGPT: exact).

    Its modules are built, and initialised, in the order of the project's `Transformer`
    (`handgrad.models.transformer`), so from one seed it starts from the project's weights, and
    in training its dropout draws the project's masks (`forward`'s, in its order)."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int,
        n_head: int,
        n_embd: int,
        dropout: float,
        bias: bool,
        tie_weights: bool,
        gelu: str,
    ):
        super().__init__()
        approximate = {"tanh": "tanh", "exact": "none"}[gelu]
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(vocab_size, n_embd),
                "wpe": nn.Embedding(block_size, n_embd),
                "drop": nn.Dropout(dropout),
                "h": nn.ModuleList(
                    PlainBlock(n_embd, n_head, dropout, bias, approximate) for _ in range(n_layer)
                ),
                "ln_f": nn.LayerNorm(n_embd, bias=bias),
            }
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        if tie_weights:
            self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits (B x T x V) for tokens (B x T)."""
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


class PlainBlock(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool, approximate: str):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = PlainCausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = PlainMLP(n_embd, dropout, bias, approximate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class PlainCausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape  # noqa: N806 (nanoGPT's names)
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class PlainMLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool, approximate: str):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU(approximate=approximate)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


GPT_KEYS = ("n_layer", "n_head", "n_embd", "dropout", "bias", "tie_weights", "gelu")


def plain_gpt(spec: dict) -> dict:
    """nanoGPT-style training of `PlainGPT` on the project's own batches (`project_batches`), the
    mean cross-entropy over each batch's B x T tokens, the rest of the recipe as
    `fit_language_model` says."""
    data, train_batches, val_batches = project_batches(spec["data"])
    model = PlainGPT(len(data.vocab), data.num_steps, *(spec[key] for key in GPT_KEYS))

    def loss(x, y, state):
        logits = model(x)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten()), None

    return fit_language_model(spec, model, loss, train_batches, val_batches)


def project_batches(data_cfg: dict):
    """The project's TimeMachineDataModule built from the data config (without `_target_`), its
    training batches of an epoch (its loader, the epoch set on its sampler as Lightning sets it:
    the same windows in the same order as the project's run, from (seed, epoch)) and its
    validation batches."""
    from handgrad.data.timemachine import TimeMachineDataModule  # imports Lightning

    data = TimeMachineDataModule(**data_cfg)
    data.setup()
    loader = data.train_dataloader()

    def train_batches(epoch: int):
        loader.sampler.set_epoch(epoch)
        return loader

    return data, train_batches, list(data.val_dataloader())


def fit_language_model(spec, model, loss, train_batches, val_batches, carry=False) -> dict:
    """The training loop the language-model loops share: `loss(x, y, state)` -> (mean
    cross-entropy of the batch, final state) on each of `train_batches(epoch)`, the state carried
    (detached) to the next batch when `carry`; clipping (`clip`), the optimizer (`optimizer`,
    `optimizer_kwargs`, `decay`). Validation every `val_every` epochs: exp of the token-weighted
    mean cross-entropy over `val_batches`, in eval mode, its own state carried from None.

    As the project's Trainer, when the spec says so: `precision` bf16-mixed runs the forward and
    the loss under torch.autocast("cpu", bfloat16) in training and validation (weights, gradients
    and the optimizer stay float32); `scheduler` (see `Schedule`); `early_stopping` (`patience`:
    stop after that many validations in a row without a lower val ppl, `min_delta`); `max_time_s`
    (the clock starts before the first batch; after the step that reaches it, the epoch's
    validation, then stop, as Lightning's Timer). `epochs` < 0: no epoch limit.
    """
    optimizer = make_optimizer(spec, decay_groups(model, spec.get("decay", "all")))
    schedule = Schedule(spec.get("scheduler"), optimizer)
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=spec.get("precision") == "bf16-mixed")
    budget = spec.get("max_time_s") or math.inf
    stopping = spec.get("early_stopping") or {}
    epochs = spec["epochs"] if spec["epochs"] >= 0 else 10**9
    steps, val_ppl, points, best, waited, epoch = 0, None, [], math.inf, 0, -1
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        state, total, count, out_of_time = None, torch.zeros(()), 0, False
        for x, y in train_batches(epoch):
            schedule.before_step()
            with autocast:
                batch_loss, state = loss(x, y, state)
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            if spec["clip"]:
                nn.utils.clip_grad_norm_(model.parameters(), spec["clip"])
            optimizer.step()
            state = detach(state) if carry else None
            total += batch_loss.detach() * y.numel()
            count += y.numel()
            steps += 1
            if time.perf_counter() - start >= budget:
                out_of_time = True
                break
        if (epoch + 1) % spec["val_every"] == 0:
            with autocast:
                val_ppl = evaluate(model, loss, val_batches, carry)
            points.append([time.perf_counter() - start, val_ppl.item()])
            schedule.after_validation(val_ppl.item())
            if val_ppl.item() < best - stopping.get("min_delta", 0.0):
                best, waited = val_ppl.item(), 0
            else:
                waited += 1
        schedule.after_epoch()
        if out_of_time or ("patience" in stopping and waited >= stopping["patience"]):
            break
    fit_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "steps": steps,
        "epochs": epoch + 1,
        "train_loss": (total / max(count, 1)).item(),  # the last epoch's token-weighted mean
        "val_ppl": None if val_ppl is None else val_ppl.item(),
        "val_ppl_points": points,  # (seconds since training started, val ppl) per validation
        "precision": spec.get("precision", "32-true"),
    }


class Schedule:
    """The recipe's lr schedule, stepped where the project steps it (`HandgradModule`):
    `ReduceLROnPlateau` (its kwargs) on the monitored val/ppl or val/loss after each validation;
    another torch.optim.lr_scheduler class once per epoch; `WarmupCosine` (nanoGPT's get_lr:
    linear warmup over warmup_steps, then a half cosine down to min_lr_ratio * lr at total_steps,
    then that floor) before every optimizer step. None: a constant lr."""

    def __init__(self, spec: dict | None, optimizer: torch.optim.Optimizer):
        self.spec = spec or {}
        name, kwargs = self.spec.get("name"), self.spec.get("kwargs", {})
        if name is None:
            self.scheduler = None
        elif name == "WarmupCosine":
            factor = functools.partial(nanogpt_lr_factor, **kwargs)
            self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            self.steps = -1  # LambdaLR starts at step 0's lr: the first before_step keeps it
        else:
            self.scheduler = getattr(torch.optim.lr_scheduler, name)(optimizer, **kwargs)

    def before_step(self) -> None:
        if self.spec.get("name") == "WarmupCosine":
            self.steps += 1
            if self.steps > 0:
                self.scheduler.step()

    def after_validation(self, val_ppl: float) -> None:
        if self.spec.get("name") == "ReduceLROnPlateau":
            monitored = math.log(val_ppl) if self.spec.get("monitor") == "val/loss" else val_ppl
            self.scheduler.step(monitored)

    def after_epoch(self) -> None:
        if self.spec.get("name") not in (None, "WarmupCosine", "ReduceLROnPlateau"):
            self.scheduler.step()


def nanogpt_lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float):
    """nanoGPT's `get_lr(it)` / learning_rate, with min_lr = min_lr_ratio * learning_rate and
    lr_decay_iters = total_steps; its warmup (it + 1) / (warmup_iters + 1), as the project's."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr_ratio
    ratio = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr_ratio + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (1 - min_lr_ratio)


@torch.no_grad()
def evaluate(model: nn.Module, loss, batches, carry: bool) -> torch.Tensor:
    """exp of the token-weighted mean cross-entropy over `batches`, in eval mode."""
    model.eval()
    total, count, state = torch.zeros(()), 0, None
    for x, y in batches:
        batch_loss, final = loss(x, y, state)
        state = final if carry else None
        total += batch_loss.float() * y.numel()
        count += y.numel()
    model.train()
    return (total / count).exp()


PLAIN_LOOPS = {"linreg": plain_linreg, "char_rnn": plain_char_rnn, "gpt": plain_gpt}
