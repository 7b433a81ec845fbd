"""model=gpt: the contract (hand loss and gradients against autograd, dropout's masks), the gradient
check through `scripts/gradcheck.py`'s path for every option, planted bugs it catches, and tiny
real runs through `handgrad.run.task.train` (both backward modes, bf16, a checkpoint's vocabulary,
metrics.json, text samples, generation).

The runs train on a small text of their own (`data.path`, `data.tokenizer=chars`): the GPT does
not need The Time Machine to be tested, and the tests need no corpus."""

from __future__ import annotations

import itertools
import json
import math
from functools import partial

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.errors import ConfigError
from handgrad.generate import generate, load_language_model, main
from handgrad.gradcheck import compare_gradients, gradcheck
from handgrad.models.gpt import GPT
from handgrad.run.task import train
from helpers.ddp_runs import train_ddp
from helpers.run_files import last_checkpoint, scalars
from helpers.runs import CONF, HELPERS, compose_config, run_script
from helpers.same_tensors import assert_same_tensors

TEXT = "ROMEO: Is it so?\nJULIET: It is, my love!\nROMEO: Then speak again.\n" * 40  # 2,640 chars


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "play.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def tiny_gpt(dropout=0.0, dtype=torch.float64, **keys) -> GPT:
    torch.manual_seed(0)
    sizes = dict(n_layer=2, n_head=2, n_embd=8) | keys
    return GPT(vocab_size=11, block_size=6, dropout=dropout, **sizes).to(dtype)


def random_batch(batch=3, steps=6, vocab=11, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (batch, steps), generator=gen)
    return x, torch.randint(0, vocab, (batch, steps), generator=gen)


# --- the contract ---------------------------------------------------------------------------------


def test_forward_is_batch_major_and_the_loss_is_the_mean_cross_entropy():
    model = tiny_gpt()
    x, y = random_batch()
    logits = model(x)
    assert logits.shape == (3, 6, 11)
    loss, state = model.loss((x, y), None)
    assert state is None
    expected = -logits.log_softmax(-1).gather(-1, y.unsqueeze(-1)).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-12, atol=0)
    assert model.batch_weight((x, y)) == 18  # tokens
    assert model.initial_state((x, y)) is None


@pytest.mark.parametrize("tie_weights", [False, True])
def test_hand_loss_and_grads_equal_autograd_of_the_training_loss(tie_weights):
    model = tiny_gpt(tie_weights=tie_weights, bias=not tie_weights)
    batch = random_batch()
    params = dict(model.named_parameters())
    loss, _ = model.loss(batch, None)
    auto = dict(zip(params, torch.autograd.grad(loss, list(params.values())), strict=True))
    with torch.no_grad():
        hand_loss, hand, state = model.hand_loss_and_grads(batch, None)
    assert state is None
    torch.testing.assert_close(hand_loss, loss.detach(), rtol=1e-12, atol=0)
    assert hand.keys() == auto.keys()
    assert ("net.head.weight" in hand) != tie_weights  # tied: one Parameter, tok_emb.weight
    for name in auto:
        torch.testing.assert_close(hand[name], auto[name], rtol=1e-9, atol=1e-14, msg=name)


def test_with_dropout_the_check_differentiates_the_written_out_forward_with_the_same_masks():
    """Dropout on: autograd's side is `net.trace` from the same RNG state as the hand pass (the
    fused attention kernel draws its own masks), and the two agree to float64 round-off; the
    masks do drop something (the loss differs from the eval-mode loss)."""
    model = tiny_gpt(dropout=0.3)
    batch = random_batch()
    (loss, auto), (hand_loss, hand) = model.gradient_pair(batch)
    torch.testing.assert_close(hand_loss, loss, rtol=1e-12, atol=0)
    for name in auto:
        torch.testing.assert_close(hand[name], auto[name], rtol=1e-9, atol=1e-14, msg=name)
    model.eval()
    assert not torch.isclose(model.reference_loss(batch, None), loss)


# --- the gradient check, through scripts/gradcheck.py's path --------------------------------------

COMBOS = list(
    itertools.product([True, False], [False, True], ["tanh", "exact"], [1, 2, 3], [1, 2, 4])
)


@pytest.fixture(scope="module")
def gradcheck_cfg(text_file):
    """`scripts/gradcheck.py model=gpt` at a tiny size, composed once (each case sets its keys)."""
    overrides = [
        "model=gpt",
        f"data.path={text_file}",
        "data.tokenizer=chars",
        "data.max_tokens=400",
        "data.batch_size=3",
        "data.num_steps=6",
        "model.n_embd=8",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="gradcheck", overrides=overrides)


def gradcheck_with(cfg, capsys, **keys) -> tuple[bool, str]:
    cfg = cfg.copy()
    with open_dict(cfg):
        for key, value in keys.items():
            cfg.model[key] = value
    passed = gradcheck(cfg)
    return passed, capsys.readouterr().out


COMBO_IDS = [f"bias={b}-tie={t}-{g}-L{n}-H{h}" for b, t, g, n, h in COMBOS]


@pytest.fixture(scope="module")
def gradcheck_batch(gradcheck_cfg):
    """The batch and data facts `gradcheck(gradcheck_cfg)` checks on (float64)."""
    datamodule = instantiate(gradcheck_cfg.data, _convert_="all")
    datamodule.setup("fit")
    torch.manual_seed(gradcheck_cfg.seed)
    batch = next(iter(datamodule.train_dataloader()))
    return batch, datamodule.model_facts()


@pytest.mark.parametrize(
    ("bias", "tie_weights", "gelu", "n_layer", "n_head"), COMBOS, ids=COMBO_IDS
)
def test_the_gradient_check_passes_for_every_option_in_float64(
    gradcheck_batch, bias, tie_weights, gelu, n_layer, n_head
):
    """The check's own comparison (`compare_gradients`, rtol 1e-8) on the script's batch, for a GPT
    of each option built directly (the script's config machinery costs 10x the check; the slow
    test below runs the whole path for every option). Dropout 0: autograd's side runs torch's own
    modules and kernels (nn.LayerNorm, scaled_dot_product_attention, F.gelu)."""
    batch, facts = gradcheck_batch
    keys = dict(bias=bias, tie_weights=tie_weights, gelu=gelu, n_layer=n_layer, n_head=n_head)
    torch.manual_seed(0)
    model = GPT(**facts, n_embd=8, dropout=0.0, **keys).double()
    rows = {row.name: row for row in compare_gradients(model, batch)}
    failed = [name for name, row in rows.items() if not row.ok(rtol=1e-8, atol=0.0)]
    assert not failed, {name: rows[name].max_rel_err for name in failed}
    assert ("net.head.weight" in rows) != tie_weights
    assert any(name.endswith("bias") for name in rows) == bias
    assert {name.split(".")[2] for name in rows if ".blocks." in name} == {
        str(layer) for layer in range(n_layer)
    }


@pytest.mark.slow  # 72 x the config machinery (~0.15 s each): the comparison above is the same
@pytest.mark.parametrize(
    ("bias", "tie_weights", "gelu", "n_layer", "n_head"), COMBOS, ids=COMBO_IDS
)
def test_gradcheck_passes_for_every_option_in_float64(
    gradcheck_cfg, capsys, bias, tie_weights, gelu, n_layer, n_head
):
    keys = dict(bias=bias, tie_weights=tie_weights, gelu=gelu, n_layer=n_layer, n_head=n_head)
    passed, out = gradcheck_with(gradcheck_cfg, capsys, dropout=0.0, **keys)
    assert passed, out
    assert f"net.blocks.{n_layer - 1}.mlp.proj.weight" in out
    assert f"net.blocks.{n_layer}." not in out


def test_gradcheck_passes_for_the_recipe(gradcheck_cfg, capsys):
    """model=gpt's own keys (dropout 0.1: the reference is the written-out forward, same masks)."""
    passed, out = gradcheck_with(gradcheck_cfg, capsys)
    assert passed, out
    assert out.strip().splitlines()[-1].startswith("gradcheck passed: the loss and 53 parameters")


@pytest.mark.parametrize("tie_weights", [False, True])
@pytest.mark.parametrize("gelu", ["tanh", "exact"])
def test_gradcheck_passes_with_dropout(gradcheck_cfg, capsys, tie_weights, gelu):
    passed, out = gradcheck_with(
        gradcheck_cfg, capsys, dropout=0.2, tie_weights=tie_weights, gelu=gelu
    )
    assert passed, out


@pytest.mark.parametrize("wrong", ["GPTWithWrongLayerNorm", "GPTWithWrongSoftmax"])
def test_gradcheck_fails_for_a_planted_bug(gradcheck_cfg, capsys, monkeypatch, wrong):
    monkeypatch.syspath_prepend(str(HELPERS))
    passed, out = gradcheck_with(gradcheck_cfg, capsys, _target_=f"wrong_transformer.{wrong}")
    assert not passed, out
    last = out.strip().splitlines()[-1]
    assert last.startswith("gradcheck FAILED")
    assert "(loss)" not in last and "net.head.weight" not in last  # the forward is right
    assert "net.blocks.0.attn.qkv.weight" in last  # upstream of the wrong term


@pytest.mark.slow  # an interpreter start (~7 s); in-process above, and test_gradcheck runs it
@pytest.mark.parametrize("wrong", ["GPTWithWrongLayerNorm", "GPTWithWrongSoftmax"])
def test_gradcheck_script_exits_1_for_a_planted_bug(text_file, tmp_path, wrong):
    result = run_script(
        "gradcheck.py",
        "model=gpt",
        f"data.path={text_file}",
        "data.tokenizer=chars",
        "data.num_steps=8",
        "data.batch_size=4",
        "model.n_embd=16",
        "model.n_layer=2",
        f"model._target_=wrong_transformer.{wrong}",
        cwd=tmp_path,
        env={"PYTHONPATH": str(HELPERS)},
    )
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].startswith("gradcheck FAILED")


# --- tiny real runs -------------------------------------------------------------------------------

TINY_RUN = [
    "model=gpt",
    "data.tokenizer=chars",
    "data.max_tokens=1100",  # 990 training characters: 7 batches of 8 x 16 an epoch
    "data.batch_size=8",
    "data.num_steps=16",
    "model.n_layer=2",
    "model.n_head=2",
    "model.n_embd=16",
    "optimizer.lr=0.01",
    "trainer.max_time=null",
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "callbacks.early_stopping=null",
    "callbacks.progress_bar.refresh_rate=0",
    "callbacks.text_sample.prefix=ROMEO:",
    "callbacks.text_sample.num_chars=20",
    "callbacks.text_sample.every_n_epochs=1",
    "callbacks.attention_maps.every_n_epochs=1",
]


def tiny_run(text_file, run_dir, *overrides: str):
    cfg = compose_config([*TINY_RUN, f"data.path={text_file}", *overrides], run_dir)
    train(cfg)
    return run_dir


@pytest.fixture(scope="module")
def runs(text_file, tmp_path_factory):
    """The same tiny float32 run without dropout in each backward mode."""
    root = tmp_path_factory.mktemp("gpt")
    return {
        mode: tiny_run(
            text_file, root / mode, "device=cpu", "model.dropout=0", f"model.backward={mode}"
        )
        for mode in ("hand", "autograd")
    }


def test_hand_and_autograd_training_end_with_the_same_weights(runs):
    """A dozen float32 Adam steps without dropout: the two modes differ by rounding only, 1e-4
    relative to each tensor's largest entry. But for the attention's key bias (the middle third
    of qkv.bias): its gradient is 0 (it adds q·b_k to a whole row of scores, and softmax ignores
    that), so both modes step it on rounding noise, which Adam scales up to lr-sized steps."""
    hand, autograd = (last_checkpoint(runs[mode]) for mode in ("hand", "autograd"))
    assert hand["global_step"] == autograd["global_step"] >= 12
    assert hand["hyper_parameters"]["backward"] == "hand"
    assert_same_weights(hand["state_dict"], autograd["state_dict"], rtol=1e-4)


def assert_same_weights(ours: dict, theirs: dict, rtol: float) -> None:
    """Every tensor within rtol of the other's largest entry, but the key bias (see above)."""
    for name, weight in theirs.items():
        mine = ours[name]
        if name.endswith("attn.qkv.bias"):  # query, value: compared; key: its gradient is 0
            mine, weight = mine.view(3, -1)[[0, 2]], weight.view(3, -1)[[0, 2]]
        assert (mine - weight).abs().max() <= rtol * weight.abs().max(), name


def test_the_key_bias_gradient_is_zero_in_both_modes():
    model = tiny_gpt()
    batch = random_batch()
    (_, auto), (_, hand) = model.gradient_pair(batch)
    for grads in (auto, hand):
        query_bias, key_bias, _ = grads["net.blocks.0.attn.qkv.bias"].view(3, -1)
        assert key_bias.abs().max() < 1e-15 < query_bias.abs().max()


def test_a_run_logs_perplexities_and_writes_metrics_json(runs):
    for run_dir in runs.values():
        events = EventAccumulator(str(run_dir))
        events.Reload()
        scalars = set(events.Tags()["scalars"])
        assert {"train/ppl", "val/ppl", "weights/grad_norm"} <= scalars
        assert not {"train/loss", "val/loss", "perf/tokens_per_s"} & scalars  # metrics.json only
        train_ppl = [point.value for point in events.Scalars("train/ppl")]
        assert len(train_ppl) == 2 and train_ppl[1] < train_ppl[0]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["status"] == "ok"
        assert metrics["last/perf/tokens_per_s"] > 0
        for source in ("best", "last"):
            ppl, loss = metrics[f"{source}/val/ppl"], metrics[f"{source}/val/loss"]
            assert ppl == pytest.approx(math.exp(loss), rel=1e-5)


def test_checkpoint_carries_the_vocabulary_and_the_block_size(runs):
    checkpoint = last_checkpoint(runs["hand"])
    assert checkpoint["tokenizer"] == "chars"
    assert checkpoint["vocab"] == sorted({"<unk>", *TEXT})
    assert checkpoint["hyper_parameters"]["block_size"] == 16
    assert checkpoint["hyper_parameters"]["vocab_size"] == len(checkpoint["vocab"])
    assert "net.tok_emb.weight" in checkpoint["state_dict"]


def test_text_samples_and_attention_maps_are_in_tensorboard(runs):
    events = EventAccumulator(str(runs["hand"]), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    samples = events.Tensors("sample/text_summary")
    assert len(samples) == 2  # after each epoch (the last is the finished model's)
    assert samples[-1].tensor_proto.string_val[0].decode().startswith("    ROMEO:")
    assert events.Tags()["images"] == ["attention/layer_0", "attention/layer_1"]
    per_epoch = last_checkpoint(runs["hand"])["global_step"] // 2
    for tag in events.Tags()["images"]:
        images = events.Images(tag)
        assert [image.step for image in images] == [per_epoch - 1, 2 * per_epoch - 1]
        assert images[-1].width > 1.5 * images[-1].height  # two head panels side by side
        assert images[-1].encoded_image_string.startswith(b"\x89PNG")


# --- generation -----------------------------------------------------------------------------------


def test_generation_crops_the_context_to_the_block_size():
    """Each new character comes from the last block_size characters: the same text as a model
    with more positions whose extra ones are never seen; the forward itself refuses more."""
    from handgrad.data.vocab import Vocab

    vocab = Vocab.from_list(["\n", " ", "<unk>", *"abcdefgh"], "chars")
    model = tiny_gpt(dtype=torch.float32)  # block_size 6
    prefix = "abcdefgh abc"  # longer than the block
    text = generate(model, vocab, prefix, num_chars=10)
    assert text.startswith(prefix) and len(text) == len(prefix) + 10
    context = vocab.encode(text)
    with torch.no_grad():
        for i in range(len(prefix), len(text)):
            logits = model(context[i - 6 : i].unsqueeze(0))
            assert int(logits[0, -1].argmax()) == int(context[i])
        with pytest.raises(IndexError):
            model(context[:7].unsqueeze(0))
    sample = partial(generate, model, vocab, prefix, 30, temperature=1.0, top_k=3)
    assert sample(seed=1) == sample(seed=1) != sample(seed=2)
    assert model.training


def test_generate_reads_a_gpt_checkpoint(runs):
    ckpt = runs["hand"] / "checkpoints" / "last.ckpt"
    model, vocab = load_language_model(ckpt)
    assert isinstance(model, GPT) and model.block_size == 16
    text = main([f"ckpt={ckpt}", "prefix=ROMEO:", "num_chars=40", "temperature=0.8", "top_k=5"])
    assert text.startswith("ROMEO:") and len(text) == 46
    assert text == generate(model, vocab, "ROMEO:", 40, temperature=0.8, top_k=5)
    with pytest.raises(ConfigError, match="has '&', 'u', not in the model's vocabulary"):
        main([f"ckpt={ckpt}", "prefix=Romeo & Juliet"])


@pytest.mark.slow  # an interpreter start; the library call above covers the same path
def test_generate_script_on_a_gpt_checkpoint(runs, tmp_path):
    ckpt = runs["autograd"] / "checkpoints" / "last.ckpt"
    result = run_script(
        "generate.py", f"ckpt={ckpt}", "prefix=JULIET:", "num_chars=30", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    model, vocab = load_language_model(ckpt)
    assert result.stdout == generate(model, vocab, "JULIET:", 30) + "\n"


# --- bf16, compile --------------------------------------------------------------------------------


def test_bf16_hand_mode_trains_on_float32_weights(text_file, tmp_path, runs):
    """device=cpu_bf16: the hand pass follows autocast (bfloat16 products); the weights and the
    optimizer stay float32, and the curve is the float32 run's to bfloat16's precision."""
    run_dir = tiny_run(
        text_file, tmp_path, "device=cpu_bf16", "model.dropout=0", "model.backward=hand"
    )
    checkpoint = last_checkpoint(run_dir)
    assert {t.dtype for t in checkpoint["state_dict"].values()} == {torch.float32}
    bf16, fp32 = (json.loads((d / "metrics.json").read_text()) for d in (run_dir, runs["hand"]))
    assert bf16["last/train/loss"] != fp32["last/train/loss"]  # the products did run in bf16
    assert bf16["last/train/loss"] == pytest.approx(fp32["last/train/loss"], rel=2e-2)


@pytest.mark.slow  # torch.compile of the hand forward + backward: tens of seconds
def test_compiled_hand_mode_trains_like_eager(text_file, tmp_path, runs):
    run_dir = tiny_run(
        text_file,
        tmp_path,
        "device=cpu",
        "model.dropout=0",
        "model.backward=hand",
        "model.compile=true",
    )
    compiled, eager = (last_checkpoint(d) for d in (run_dir, runs["hand"]))
    assert_same_weights(compiled["state_dict"], eager["state_dict"], rtol=1e-4)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok"


# --- interrupt and resume -------------------------------------------------------------------------


def test_mid_epoch_interrupt_resumes_bit_identically(text_file, tmp_path):
    """Hand mode with dropout (masks from the global RNG, which the checkpoint carries): a run
    stopped by SIGTERM in the middle of its second epoch and resumed ends with the weights,
    optimizer state and logged curves of a run never stopped, to the last bit."""
    overrides = [
        f"data.path={text_file}",
        "device=cpu",
        "model.backward=hand",
        "model.dropout=0.1",
        "trainer.max_epochs=3",
        "callbacks.text_sample=null",
        "callbacks.attention_maps=null",
    ]
    straight = tiny_run(text_file, tmp_path / "straight", *overrides)
    per_epoch = last_checkpoint(straight)["global_step"] // 3
    stop = per_epoch + per_epoch // 2  # inside the second epoch
    interrupted = tmp_path / "interrupted"
    cfg = compose_config([*TINY_RUN, *overrides], interrupted)
    with open_dict(cfg):
        cfg.callbacks.signal_at = {"_target_": "helpers.interrupts.SignalAt", "after_step": stop}
    with pytest.raises(SystemExit) as stopped:
        train(cfg)
    assert stopped.value.code == 143
    assert last_checkpoint(interrupted)["global_step"] == stop
    resume = f"ckpt_path={interrupted}/checkpoints/last.ckpt"
    train(compose_config([*TINY_RUN, *overrides, resume], interrupted))
    a, b = last_checkpoint(straight), last_checkpoint(interrupted)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert_same_tensors(a["state_dict"], b["state_dict"], "state_dict")
    assert_same_tensors(a["optimizer_states"], b["optimizer_states"], "optimizer_states")
    assert scalars(interrupted) == scalars(straight)
    assert json.loads((interrupted / "metrics.json").read_text())["status"] == "ok"


@pytest.mark.slow  # a search of two trials through the command line
def test_the_optuna_search_runs_trials_of_gpt(text_file, tmp_path):
    pytest.importorskip("optuna", reason="needs the hpo extra: pip install -e '.[hpo]'")
    sweep_dir = tmp_path / "search"
    result = run_script(
        "train.py",
        "hparams_search=gpt_optuna",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweeper.n_trials=2",
        f"data.path={text_file}",
        "data.tokenizer=chars",
        "data.max_tokens=600",
        "data.num_steps=16",
        "data.batch_size=8",
        "trainer.max_epochs=1",
        "trainer.max_time=null",
        "callbacks.text_sample.prefix=ROMEO:",
        "device=cpu",
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = sorted(sweep_dir.glob("*/metrics.json"))
    assert len(metrics) == 2
    for path in metrics:
        assert json.loads(path.read_text())["status"] == "ok"
        assert "model.n_layer=" in (path.parent / ".hydra" / "overrides.yaml").read_text()


@pytest.mark.slow  # two runs of the recipe's size (4 layers x 128)
def test_the_nanogpt_recipe_trains_alike_in_both_modes(text_file, tmp_path):
    """experiment=nanogpt_char_cpu, shortened to 20 steps (5 of warmup): autograd with torch's
    AdamW and hand mode with HandAdamW (the same keys) end with the same weights."""
    short = ["experiment=nanogpt_char_cpu", f"data.path={text_file}", "trainer.max_steps=20"]
    short += ["scheduler.warmup_steps=5", "callbacks.progress_bar.refresh_rate=0", "device=cpu"]
    short += ["callbacks.text_sample.prefix=ROMEO:", "callbacks.attention_maps=null"]
    hand_adamw = ["model.backward=hand", "optimizer=hand_adamw", "optimizer.betas=[0.9,0.99]"]
    hand_adamw += ["optimizer.weight_decay=0.1", "optimizer.decay=matrices"]
    for name, overrides in (("autograd", []), ("hand", hand_adamw)):
        train(compose_config([*short, *overrides], tmp_path / name))
    hand, autograd = (last_checkpoint(tmp_path / name) for name in ("hand", "autograd"))
    assert hand["global_step"] == autograd["global_step"] == 20
    weights = hand["state_dict"]
    assert torch.equal(weights["net.head.weight"], weights["net.tok_emb.weight"])  # tied
    assert_same_weights(hand["state_dict"], autograd["state_dict"], rtol=1e-4)


@pytest.mark.slow  # two runs of two processes
def test_ddp_averages_the_hand_gradients_as_autograd_does(text_file, tmp_path):
    """device=ddp (2 processes, float32): the base class's all-reduce of the hand gradients keeps
    the replicas identical, and hand mode ends where autograd (DDP's reducer) ends, up to float32
    round-off. SGD and no dropout: Adam would scale the round-off of the key bias's zero gradient
    into lr-sized steps, and dropout draws other masks in SDPA than in the written-out forward."""
    weights = {}
    for backward in ("autograd", "hand"):
        overrides = ["model.dropout=0", "optimizer=sgd", "optimizer.lr=0.1"]
        overrides += [f"model.backward={backward}", "trainer.max_epochs=1"]
        _, ranks = train_ddp(tmp_path / backward, [*TINY_RUN, f"data.path={text_file}", *overrides])
        assert_same_tensors(ranks[0], ranks[1], backward)
        weights[backward] = ranks[0]
    for name, weight in weights["autograd"].items():
        torch.testing.assert_close(weights["hand"][name], weight, rtol=1e-4, atol=1e-5, msg=name)
