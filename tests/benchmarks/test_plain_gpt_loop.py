"""The benchmark's plain nanoGPT loop (`benchmarks/plain_loops.py`'s PlainGPT, `plain_gpt`) is the
project's model=gpt: from one seed it starts from the project's weights, and from one RNG state
its training forward draws the project's dropout masks and computes the project's logits; it trains
on the project's own batches. The loop the language-model loops share (`fit_language_model`)
follows the recipe's schedule, precision, early stopping and time budget as the project does."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from benchmarks.kinds.against_plain import plain_spec
from benchmarks.plain_loops import (
    PlainGPT,
    Schedule,
    decay_groups,
    fit_language_model,
    nanogpt_lr_factor,
    plain_char_rnn,
    plain_gpt,
    project_batches,
)
from handgrad.data.timemachine import TimeMachineDataModule
from handgrad.models.transformer import Transformer
from handgrad.optim.param_groups import embedding_tables, param_groups
from handgrad.optim.schedules import WarmupCosine, warmup_cosine
from helpers.runs import compose_config

VOCAB, BLOCK, LAYERS, HEADS, WIDTH = 13, 8, 2, 2, 16
NANOGPT_NAMES = {  # nanoGPT's names -> the project's (handgrad.models.transformer)
    "transformer.wte": "tok_emb", "transformer.wpe": "pos_emb", "transformer.h": "blocks",
    "transformer.ln_f": "ln_f", "lm_head": "head", "c_attn": "qkv", "c_proj": "proj",
    "c_fc": "fc",
}  # fmt: skip


def project_name(name: str) -> str:
    for theirs, ours in NANOGPT_NAMES.items():
        name = name.replace(theirs, ours)
    return name


def both(bias: bool, tie: bool, gelu: str, dropout: float = 0.2):
    """(plain, project) networks, each built from seed 0."""
    args = (VOCAB, BLOCK, LAYERS, HEADS, WIDTH, dropout, bias, tie, gelu)
    torch.manual_seed(0)
    plain = PlainGPT(*args)
    torch.manual_seed(0)
    return plain, Transformer(*args)


@pytest.mark.parametrize("gelu", ["tanh", "exact"])
@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_the_plain_gpt_is_the_projects(bias, tie, gelu):
    plain, project = both(bias, tie, gelu)
    mine = {project_name(name): p for name, p in plain.named_parameters()}
    theirs = dict(project.named_parameters())
    assert mine.keys() == theirs.keys()
    for name, weight in mine.items():
        assert torch.equal(weight, theirs[name]), name
    if tie:
        assert plain.lm_head.weight is plain.transformer.wte.weight
    tokens = torch.randint(0, VOCAB, (3, BLOCK), generator=torch.Generator().manual_seed(1))
    for train in (True, False):  # training: the same dropout masks from the same RNG state
        plain.train(train)
        project.train(train)
        with torch.no_grad():
            torch.manual_seed(3)
            logits = plain(tokens)
            after_plain = torch.get_rng_state()
            torch.manual_seed(3)
            expected = project(tokens)
            assert torch.equal(torch.get_rng_state(), after_plain)  # the same draws
        torch.testing.assert_close(logits, expected, rtol=1e-6, atol=1e-6)


def test_weight_decay_groups_are_the_projects():
    """`decay_groups` splits the parameters as the project's optimizer.decay does."""
    plain, project = both(bias=True, tie=True, gelu="tanh")
    for decay in ("matrices", "matrices_no_embeddings"):
        ours = param_groups(project.named_parameters(), {}, decay, embedding_tables(project))
        mine = decay_groups(plain, decay)
        assert [len(g["params"]) for g in mine] == [len(g["params"]) for g in ours]
        assert [g.get("weight_decay") for g in mine] == [g.get("weight_decay") for g in ours]
        for mine_group, our_group in zip(mine, ours, strict=True):
            assert [p.shape for p in mine_group["params"]] == [p.shape for p in our_group["params"]]


def test_the_warmup_cosine_schedule_is_the_projects():
    """nanoGPT's get_lr as LambdaLR, stepped before each optimizer step, gives the lr the
    project's WarmupCosine gives each step (stepped as HandgradModule steps it)."""
    settings = {"warmup_steps": 5, "total_steps": 20, "min_lr_ratio": 0.1}
    for step in range(30):
        assert nanogpt_lr_factor(step, **settings) == pytest.approx(warmup_cosine(step, **settings))
    weights = [nn.Parameter(torch.zeros(2))]
    plain_opt = torch.optim.SGD(weights, lr=0.5)
    ours_opt = torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.5)
    plain = Schedule({"name": "WarmupCosine", "kwargs": settings}, plain_opt)
    ours = WarmupCosine(ours_opt, **settings)
    for global_step in range(30):
        plain.before_step()
        while ours.last_epoch < global_step:  # HandgradModule.step_scheduler_per_step
            ours.step()
        assert plain_opt.param_groups[0]["lr"] == pytest.approx(ours_opt.param_groups[0]["lr"])
        plain_opt.step()  # (no gradients: nothing moves; the schedulers see a step taken)
        ours_opt.step()
        plain.after_epoch()  # a per-step schedule ignores epochs


def test_the_plateau_schedule_cuts_on_val_ppl():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    kwargs = {"mode": "min", "factor": 0.3, "patience": 0}
    schedule = Schedule({"name": "ReduceLROnPlateau", "kwargs": kwargs}, optimizer)
    for ppl, lr in ((10.0, 1.0), (9.0, 1.0), (9.5, 0.3), (8.0, 0.3), (8.0, 0.09)):
        schedule.before_step()
        schedule.after_validation(ppl)
        schedule.after_epoch()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr)


class Spy(nn.Module):
    """A bigram model that notes whether its forward ran under CPU autocast."""

    def __init__(self):
        super().__init__()
        self.table = nn.Linear(VOCAB, VOCAB)
        self.autocast = []

    def forward(self, x):
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        return self.table(nn.functional.one_hot(x, VOCAB).float())


@pytest.mark.parametrize(("precision", "autocast"), [("bf16-mixed", True), ("32-true", False)])
def test_bf16_mixed_runs_training_and_validation_under_autocast(precision, autocast):
    model, result = fit_spy(precision=precision, epochs=2)
    assert model.autocast == [autocast] * (2 * 4 + 2)  # 4 training, 1 validation batch an epoch
    assert result["precision"] == precision and model.table.weight.dtype == torch.float32


def test_the_time_budget_ends_training_with_a_validation():
    _, result = fit_spy(epochs=10**6, max_time_s=0.3)
    assert result["fit_s"] >= 0.3 and len(result["val_ppl_points"]) == result["epochs"]
    elapsed = [seconds for seconds, _ in result["val_ppl_points"]]
    assert elapsed == sorted(elapsed) and elapsed[-1] <= result["fit_s"]
    assert elapsed[-2] < 0.3 <= elapsed[-1]  # the last one validates the step past the budget


def test_early_stopping_counts_validations_without_a_better_ppl():
    model, result = fit_spy(
        epochs=50, optimizer_kwargs={"lr": 0.0}, early_stopping={"patience": 3, "min_delta": 0}
    )  # lr 0: the same ppl every epoch, so never better than the first
    assert result["epochs"] == 4 and result["steps"] == 16


def fit_spy(**spec):
    gen = torch.Generator().manual_seed(0)
    windows = torch.randint(0, VOCAB, (4, 8, 9), generator=gen)
    batches = [(x[:, :-1], x[:, 1:]) for x in windows]
    model = Spy()

    def loss(x, y, state):
        return nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()), None

    base = {"optimizer": "SGD", "optimizer_kwargs": {"lr": 0.1}, "clip": 1.0, "val_every": 1}
    result = fit_language_model({**base, **spec}, model, loss, lambda epoch: batches, batches[:1])
    return model, result


TINY_GPT = [
    "device=cpu_bf16", "model=gpt", "model.n_layer=1", "model.n_head=2", "model.n_embd=16",
    "data.max_tokens=6000", "data.batch_size=8", "data.num_steps=16", "trainer.max_epochs=3",
]  # fmt: skip


@pytest.mark.corpus
def test_plain_gpt_trains_on_the_projects_batches(tmp_path):
    spec = plain_spec(compose_config(TINY_GPT, tmp_path))
    data, train_batches, val_batches = project_batches(spec["data"])
    reference = TimeMachineDataModule(**spec["data"])  # the project's own loader, epoch 1
    loader = reference.train_dataloader()
    loader.sampler.set_epoch(1)
    for (x, y), (x_ref, y_ref) in zip(train_batches(1), loader, strict=True):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref)
    assert len(val_batches) == len(reference.val_dataloader())

    torch.manual_seed(0)
    result = plain_gpt(spec)
    assert result["epochs"] == 3 and result["steps"] == 3 * data.num_train_batches
    assert [len(point) for point in result["val_ppl_points"]] == [2, 2, 2]
    assert math.isfinite(result["train_loss"]) and 1 < result["val_ppl"] < len(data.vocab)
    assert result["precision"] == "bf16-mixed"


@pytest.mark.corpus
def test_plain_awd_loop_runs_the_whole_recipe(tmp_path):
    """The char-RNN loop with the AWD keys, bf16, plateau cuts, early stopping and a budget."""
    overrides = [
        "device=cpu_bf16", "model=rnn", "model.hidden_size=16", "model.embedding_dim=8",
        "model.embedding_dropout=0.1", "model.weight_drop=0.3", "model.dropout_kind=locked",
        "data.max_tokens=3000", "data.batch_size=8", "data.num_steps=16", "trainer.max_epochs=2",
    ]  # fmt: skip
    spec = plain_spec(compose_config(overrides, tmp_path))
    torch.manual_seed(0)
    result = plain_char_rnn(spec)
    assert result["epochs"] == 2 and len(result["val_ppl_points"]) == 2
    assert math.isfinite(result["train_loss"]) and 1 < result["val_ppl"] < 28
    assert result["precision"] == "bf16-mixed"
