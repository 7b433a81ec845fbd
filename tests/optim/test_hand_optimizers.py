"""The hand-written SGD and Adam against torch.optim: same updates, state, groups and errors."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from handgrad.errors import ConfigError
from handgrad.optim.hand_optimizers import HandAdam, HandSGD
from handgrad.run.task import train
from helpers.runs import compose_config

STEPS = 1000
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-6}
SHAPES = [(3, 4), ()]

SGD_OPTIONS = [
    dict(momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay)
    for momentum in (0.0, 0.9)
    for dampening in (0.0, 0.1)
    for nesterov in (False, True)
    for weight_decay in (0.0, 0.01)
    if not nesterov or (momentum > 0 and dampening == 0)
]
ADAM_OPTIONS = [
    dict(amsgrad=amsgrad, weight_decay=weight_decay, **betas_eps)
    for amsgrad in (False, True)
    for weight_decay in (0.0, 0.01)
    for betas_eps in ({}, {"betas": (0.8, 0.99), "eps": 1e-6})
]


class NoisyQuadratic:
    """Loss Σ a/2 (θ - c)² seen through noisy gradients g_t = a (θ - c) + ε_t, seeded per problem.

    The noise ε_t is drawn once for all steps, so a run resumed at step t sees the same gradients.
    """

    def __init__(self, dtype: torch.dtype, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)

        def draw(sample, shape):
            return sample(shape, generator=gen, dtype=torch.float64).to(dtype)

        self.start = [draw(torch.randn, shape) for shape in SHAPES]
        self.center = [draw(torch.randn, shape) for shape in SHAPES]
        self.curvature = [draw(torch.rand, shape) + 0.1 for shape in SHAPES]
        self.noise = [0.1 * draw(torch.randn, (STEPS, *shape)) for shape in SHAPES]

    def params(self) -> list[torch.nn.Parameter]:
        return [torch.nn.Parameter(p.clone()) for p in self.start]

    def run(self, optimizer, params, steps: range) -> list[torch.nn.Parameter]:
        for t in steps:
            for p, a, c, noise in zip(params, self.curvature, self.center, self.noise, strict=True):
                p.grad = a * (p.detach() - c) + noise[t]
            optimizer.step()
        return params


def max_abs_diff(xs, ys) -> float:
    return max((x - y).abs().max().item() for x, y in zip(xs, ys, strict=True))


def run_both(hand_cls, torch_cls, dtype, groups=None, **options):
    """Train the same problem with the hand and the torch optimizer; both final parameter lists."""
    problem = NoisyQuadratic(dtype)
    results = []
    for cls in (hand_cls, torch_cls):
        params = problem.params()
        param_spec = params if groups is None else [{**g, "params": params[i]} for i, g in groups]
        results.append(problem.run(cls(param_spec, **options), params, range(STEPS)))
    return results


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=str)
def test_sgd_matches_torch(options, dtype):
    hand, ref = run_both(HandSGD, torch.optim.SGD, dtype, lr=0.05, **options)
    assert max_abs_diff(hand, ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=str)
def test_adam_matches_torch(options, dtype):
    hand, ref = run_both(HandAdam, torch.optim.Adam, dtype, lr=0.01, **options)
    assert max_abs_diff(hand, ref) <= TOLERANCE[dtype]


@pytest.mark.parametrize(
    ("hand_cls", "torch_cls", "group", "defaults"),
    [
        (HandSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.5), dict(lr=0.01, momentum=0.9)),
        (HandAdam, torch.optim.Adam, dict(lr=0.1, betas=(0.5, 0.9)), dict(lr=0.01, amsgrad=True)),
    ],
    ids=["sgd", "adam"],
)
def test_param_groups_use_their_own_settings_like_torch(hand_cls, torch_cls, group, defaults):
    groups = [(0, group), (1, {})]  # the second group takes the optimizer's defaults
    hand, ref = run_both(hand_cls, torch_cls, torch.float64, groups=groups, **defaults)
    assert max_abs_diff(hand, ref) <= TOLERANCE[torch.float64]


@pytest.mark.parametrize(
    ("cls", "options"),
    [(HandSGD, dict(lr=0.05, momentum=0.9)), (HandAdam, dict(lr=0.01, amsgrad=True))],
    ids=["sgd", "adam"],
)
def test_state_dict_resumes_bit_identically(cls, options):
    problem = NoisyQuadratic(torch.float32)
    straight = problem.params()
    problem.run(cls(straight, **options), straight, range(STEPS))

    resumed = problem.params()
    first_half = cls(resumed, **options)
    problem.run(first_half, resumed, range(STEPS // 2))
    saved = copy.deepcopy(first_half.state_dict())
    second_half = cls(resumed, **options)
    second_half.load_state_dict(saved)
    problem.run(second_half, resumed, range(STEPS // 2, STEPS))

    assert all(torch.equal(a, b) for a, b in zip(straight, resumed, strict=True))


@pytest.mark.parametrize(
    ("cls", "options"),
    [(HandSGD, dict(lr=0.1, momentum=0.9)), (HandAdam, dict(lr=0.1))],
    ids=["sgd", "adam"],
)
def test_state_persists_across_steps(cls, options):
    param = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    optimizer = cls([param], **options)
    param.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    optimizer.step()
    before = param.detach().clone()
    param.grad = torch.tensor([0.5, 2.0], dtype=torch.float64)
    optimizer.step()

    fresh_param = torch.nn.Parameter(before.clone())
    fresh_param.grad = param.grad.clone()
    cls([fresh_param], **options).step()
    assert not torch.allclose(param - before, fresh_param - before)


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (
            HandSGD,
            dict(lr=-1),
            "optimizer.lr=-1: the learning rate must be a number > 0 (e.g. 0.1; adam: 0.001)",
        ),
        (
            HandSGD,
            dict(lr=0),
            "optimizer.lr=0: the learning rate must be a number > 0 (e.g. 0.1; adam: 0.001)",
        ),
        (HandSGD, dict(momentum=-0.5), "optimizer.momentum=-0.5 must be a number >= 0"),
        (HandSGD, dict(weight_decay=-0.1), "optimizer.weight_decay=-0.1 must be a number >= 0"),
        (
            HandSGD,
            dict(momentum=0.9, dampening=0.1, nesterov=True),
            "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0, "
            "got momentum=0.9, dampening=0.1",
        ),
        (
            HandAdam,
            dict(lr=-1),
            "optimizer.lr=-1: the learning rate must be a number > 0 (e.g. 0.1; adam: 0.001)",
        ),
        (HandAdam, dict(eps=-1e-8), "optimizer.eps=-1e-08 must be a number >= 0"),
        (
            HandAdam,
            dict(betas=(0.9, 1.0)),
            "optimizer.betas=[0.9, 1.0] must be two numbers in [0, 1), e.g. [0.9, 0.999]",
        ),
        (HandAdam, dict(weight_decay=-0.1), "optimizer.weight_decay=-0.1 must be a number >= 0"),
    ],
)
def test_bad_arguments_are_config_errors(cls, options, message):
    with pytest.raises(ConfigError) as error:
        cls([torch.nn.Parameter(torch.zeros(1))], **options)
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("torch_name", "hand_name", "options"),
    [
        ("sgd", "hand_sgd", ["optimizer.momentum=0.9", "optimizer.weight_decay=0.01"]),
        ("adam", "hand_adam", ["optimizer.lr=0.05", "optimizer.weight_decay=0.01"]),
    ],
)
def test_hand_optimizer_trains_like_its_torch_twin(torch_name, hand_name, options, tmp_path):
    results = {}
    for name in (torch_name, hand_name):
        overrides = ["model=linear", "trainer.max_epochs=3", "device=cpu", f"optimizer={name}"]
        cfg = compose_config(overrides + options, tmp_path / name)
        val_loss = train(cfg)
        learned = json.loads((tmp_path / name / "metrics.json").read_text())["learned"]
        results[name] = [val_loss, learned["w"], learned["b"]]
    assert results[hand_name] == pytest.approx(results[torch_name], abs=1e-6)
