"""The hand-written SGD, Adam and AdamW against torch.optim: same updates, state, groups and
errors."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from handgrad.errors import ConfigError
from handgrad.optim.hand_optimizers import HandAdam, HandAdamW, HandSGD
from handgrad.run.task import train
from helpers.runs import compose_config

STEPS = 1000
# Where the hand and torch optimizers are compared: the first steps, where a buffer starts and the
# bias corrections are largest (a noisy quadratic pulls every run to the same point later), then on.
CHECKED_STEPS = (1, 2, 3, 10, STEPS)
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
# AdamW's decay shrinks the weights themselves (0.01 is torch's default; 0.5 makes it a large part
# of every step). Without decay AdamW is Adam, which the Adam test covers.
ADAMW_OPTIONS = [
    dict(amsgrad=amsgrad, weight_decay=weight_decay, **betas_eps)
    for amsgrad in (False, True)
    for weight_decay in (0.01, 0.5)
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


def state_of(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, torch.Tensor]:
    """One parameter's optimizer state, every value a float64 tensor (torch keeps Adam's `step`
    as a tensor, ours as an int)."""
    return {
        key: torch.as_tensor(value).detach().to(torch.float64).clone()
        for key, value in optimizer.state[param].items()
    }


def trajectory(cls, problem: NoisyQuadratic, groups=None, **options) -> dict[int, list]:
    """Train `problem` with `cls`; at each of CHECKED_STEPS, (parameter, its state) for every
    parameter. `groups` = [(parameter index, group settings)] for per-group settings."""
    params = problem.params()
    param_spec = params if groups is None else [{**g, "params": params[i]} for i, g in groups]
    optimizer = cls(param_spec, **options)
    seen, done = {}, 0
    for step in CHECKED_STEPS:
        problem.run(optimizer, params, range(done, step))
        seen[step], done = [(p.detach().clone(), state_of(optimizer, p)) for p in params], step
    return seen


def assert_same_trajectory(hand_cls, torch_cls, dtype, groups=None, **options) -> None:
    """The hand and the torch optimizer on the same problem: after each of CHECKED_STEPS the same
    parameters and the same state (the same keys, each value within the dtype's tolerance)."""
    problem = NoisyQuadratic(dtype)
    hand = trajectory(hand_cls, problem, groups, **options)
    ref = trajectory(torch_cls, problem, groups, **options)
    tolerance = dict(rtol=0.0, atol=TOLERANCE[dtype])
    for step in CHECKED_STEPS:
        for i, ((hand_p, hand_s), (ref_p, ref_s)) in enumerate(
            zip(hand[step], ref[step], strict=True)
        ):
            where = f"after step {step}, parameter {i}"
            torch.testing.assert_close(hand_p, ref_p, **tolerance, msg=where)
            assert hand_s.keys() == ref_s.keys(), where
            for key, value in ref_s.items():
                torch.testing.assert_close(hand_s[key], value, **tolerance, msg=f"{where}: {key}")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", SGD_OPTIONS, ids=str)
def test_sgd_matches_torch_step_by_step_state_included(options, dtype):
    assert_same_trajectory(HandSGD, torch.optim.SGD, dtype, lr=0.05, **options)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=str)
def test_adam_matches_torch_step_by_step_state_included(options, dtype):
    assert_same_trajectory(HandAdam, torch.optim.Adam, dtype, lr=0.01, **options)


@pytest.mark.parametrize(
    ("options", "dtype"),
    [(options, torch.float64) for options in ADAMW_OPTIONS]
    + [(dict(amsgrad=True, weight_decay=0.5), torch.float32)],
    ids=str,
)
def test_adamw_matches_torch_step_by_step_state_included(options, dtype):
    assert_same_trajectory(HandAdamW, torch.optim.AdamW, dtype, lr=0.01, **options)


def test_adamw_decays_the_weights_not_the_gradient():
    """One step from θ = 1 with g = 0: Adam's L2 term makes g = λθ and a full-size step (the
    moments normalise it away: θ - lr·sign), AdamW shrinks θ to (1 - lr λ) and the zero gradient
    moves it no further."""
    results = {}
    for cls in (HandAdam, HandAdamW):
        param = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
        param.grad = torch.zeros(1, dtype=torch.float64)
        cls([param], lr=0.1, weight_decay=0.5).step()
        results[cls] = param.item()
    assert results[HandAdamW] == 1 - 0.1 * 0.5
    assert results[HandAdam] == pytest.approx(1 - 0.1, abs=1e-6)


@pytest.mark.parametrize(
    ("hand_cls", "torch_cls", "group", "defaults"),
    [
        (HandSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.5), dict(lr=0.01, momentum=0.9)),
        (HandAdam, torch.optim.Adam, dict(lr=0.1, betas=(0.5, 0.9)), dict(lr=0.01, amsgrad=True)),
        (
            HandAdamW,
            torch.optim.AdamW,
            dict(lr=0.1, weight_decay=0.0),  # a no-decay group, as optimizer.decay makes them
            dict(lr=0.01, weight_decay=0.5),
        ),
    ],
    ids=["sgd", "adam", "adamw"],
)
def test_param_groups_use_their_own_settings_like_torch(hand_cls, torch_cls, group, defaults):
    groups = [(0, group), (1, {})]  # the second group takes the optimizer's defaults
    assert_same_trajectory(hand_cls, torch_cls, torch.float64, groups=groups, **defaults)


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (HandSGD, dict(lr=0.05, momentum=0.9)),
        (HandAdam, dict(lr=0.01, amsgrad=True)),
        (HandAdamW, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ],
    ids=["sgd", "adam", "adamw"],
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
    [(HandSGD, dict(lr=0.1, momentum=0.9)), (HandAdam, dict(lr=0.1)), (HandAdamW, dict(lr=0.1))],
    ids=["sgd", "adam", "adamw"],
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


# weight_decay 1: a decay term switched on by comparing with 1 rather than 0 would be skipped.
HAND_AND_TORCH = [
    (HandSGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=1.0)),
    (HandAdam, torch.optim.Adam, dict(lr=0.1, weight_decay=1.0)),
    (HandAdamW, torch.optim.AdamW, dict(lr=0.1, weight_decay=1.0)),
]


@pytest.mark.parametrize(
    ("hand_cls", "torch_cls"),
    [(HandSGD, torch.optim.SGD), (HandAdam, torch.optim.Adam), (HandAdamW, torch.optim.AdamW)],
    ids=["sgd", "adam", "adamw"],
)
def test_defaults_are_torchs(hand_cls, torch_cls):
    """Every setting left out takes torch's default (its other options stay torch's own)."""
    param = torch.nn.Parameter(torch.zeros(1))
    hand, ref = hand_cls([param]).defaults, torch_cls([param]).defaults
    assert hand == {key: ref[key] for key in hand}


@pytest.mark.parametrize(
    ("hand_cls", "torch_cls", "options"), HAND_AND_TORCH, ids=["sgd", "adam", "adamw"]
)
def test_a_parameter_without_a_gradient_is_left_alone_and_the_others_step(
    hand_cls, torch_cls, options
):
    """A frozen or unused parameter (grad None) comes first: it keeps its value and gets no
    state, and the parameters after it still step, as in torch."""
    results = []
    for cls in (hand_cls, torch_cls):
        frozen, trained = (torch.nn.Parameter(torch.ones(2, dtype=torch.float64)) for _ in "ab")
        optimizer = cls([frozen, trained], **options)
        for _ in range(2):
            trained.grad = torch.tensor([1.0, -2.0], dtype=torch.float64)
            optimizer.step()
        assert torch.equal(frozen, torch.ones(2, dtype=torch.float64))
        assert not optimizer.state[frozen]
        results.append((trained.detach().clone(), state_of(optimizer, trained)))
    (hand, hand_state), (ref, ref_state) = results
    torch.testing.assert_close(hand, ref, rtol=0, atol=1e-15)
    assert hand_state.keys() == ref_state.keys()


def step_with_closure(cls, options: dict) -> tuple[torch.Tensor, object, torch.Tensor]:
    """One step given a closure (from inside no_grad code, as Lightning calls it), one without;
    what each returned and the parameter after them."""
    param = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    optimizer = cls([param], **options)

    def closure():
        optimizer.zero_grad()
        loss = (param - 3).square().sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = optimizer.step(closure)
    return loss, optimizer.step(), param.detach()


@pytest.mark.parametrize(
    ("hand_cls", "torch_cls", "options"), HAND_AND_TORCH, ids=["sgd", "adam", "adamw"]
)
def test_step_runs_the_closure_with_gradients_on_and_returns_its_loss(hand_cls, torch_cls, options):
    """Lightning's automatic optimization hands `step` a closure that computes the loss and calls
    backward; `step` returns its loss, and None without one, as torch's optimizers do."""
    loss, no_loss, param = step_with_closure(hand_cls, options)
    assert loss.item() == 29.0  # (1 - 3)² + (-2 - 3)², before the step
    assert no_loss is None
    torch.testing.assert_close(param, step_with_closure(torch_cls, options)[2], rtol=0, atol=1e-15)


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
        (HandAdamW, dict(weight_decay=-0.1), "optimizer.weight_decay=-0.1 must be a number >= 0"),
        (
            HandAdamW,
            dict(betas=(1.0, 0.9)),
            "optimizer.betas=[1.0, 0.9] must be two numbers in [0, 1), e.g. [0.9, 0.999]",
        ),
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
        ("adamw", "hand_adamw", ["optimizer.lr=0.05", "optimizer.weight_decay=0.5"]),
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
