"""Text generation: greedy / temperature / top-k choice, reading the prefix by the tokenizer,
checkpoint loading; a `data.tokenizer=chars` run from training to generated text."""

from __future__ import annotations

import re
import string

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from handgrad.data.vocab import Vocab
from handgrad.errors import CheckpointError, ConfigError
from handgrad.generate import generate, load_char_rnn, main, next_token, parse_args
from handgrad.models.char_rnn import CharRNN
from handgrad.run.task import train
from helpers.runs import compose_config, run_script

VOCAB = Vocab.from_list([" ", "<unk>", *string.ascii_lowercase])
CHARS = Vocab.from_list(["\n", " ", "!", "<unk>", "T", *string.ascii_lowercase], "chars")


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CharRNN(len(VOCAB), cell="gru", hidden_size=8)


def save_checkpoint(path, model, **extra):
    checkpoint = {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}
    torch.save({**checkpoint, "vocab": VOCAB.to_list(), **extra}, path)
    return path


def test_greedy_is_argmax_and_sampling_keeps_to_the_top_k():
    logits = torch.tensor([0.0, 3.0, 1.0, 2.5, -1.0])
    gen = torch.Generator().manual_seed(0)
    assert next_token(logits, 0.0, None, gen) == 1
    draws = {next_token(logits, 1.0, 2, gen) for _ in range(200)}
    assert draws == {1, 3}
    all_draws = {next_token(logits, 5.0, None, gen) for _ in range(400)}
    assert all_draws == {0, 1, 2, 3, 4}


def test_generate_is_reproducible_and_restores_training_mode(model):
    greedy = generate(model, VOCAB, "time traveller ", num_chars=40)
    assert greedy == generate(model, VOCAB, "time traveller ", num_chars=40)
    sample = generate(model, VOCAB, "time ", num_chars=40, temperature=1.0, seed=3)
    assert sample == generate(model, VOCAB, "time ", num_chars=40, temperature=1.0, seed=3)
    assert len(sample.replace("<unk>", "?")) == len("time ") + 40  # one token per character
    assert model.training


def test_prefix_is_cleaned_like_the_training_text(model):
    text = generate(model, VOCAB, "The Time-Traveller's 1st Über-trip!", num_chars=0)
    assert text == "the time traveller s st ber trip "
    with pytest.raises(ConfigError, match="prefix is empty: give at least one character"):
        generate(model, VOCAB, "", num_chars=5)


def test_chars_prefix_is_read_as_it_is_and_an_unknown_character_is_named():
    torch.manual_seed(0)
    model = CharRNN(len(CHARS), cell="gru", hidden_size=8)
    text = generate(model, CHARS, "The time!\n", num_chars=20, temperature=1.0)
    assert text.startswith("The time!\n") and len(text.replace("<unk>", "?")) == 30
    message = (
        "prefix='Time? Yes!' has '?', 'Y', not in the model's vocabulary (the characters of its "
        "training text); start from characters that text has"
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        generate(model, CHARS, "Time? Yes!", num_chars=5)
    with pytest.raises(ConfigError, match="'é', '2'"):
        generate(model, CHARS, "été 2", num_chars=5)


def test_checkpoint_round_trip(model, tmp_path):
    path = save_checkpoint(tmp_path / "rnn.ckpt", model)
    loaded, vocab = load_char_rnn(path)
    assert vocab.idx_to_token == VOCAB.idx_to_token and vocab.tokenizer == "d2l"
    assert generate(loaded, vocab, "time ", 30) == generate(model, VOCAB, "time ", 30)
    assert main([f"ckpt={path}", "prefix=Time ", "num_chars=30"]) == generate(
        model, VOCAB, "time ", 30
    )


def test_bad_checkpoints_are_clear_errors_naming_the_file(model, tmp_path):
    with pytest.raises(
        CheckpointError, match=f"checkpoint {tmp_path / 'nope.ckpt'} does not exist"
    ):
        load_char_rnn(tmp_path / "nope.ckpt")
    garbled = tmp_path / "garbled.ckpt"
    garbled.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=f"checkpoint {garbled} cannot be read"):
        load_char_rnn(garbled)
    linear = tmp_path / "linear.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1, 1)}, "hyper_parameters": {}}, linear)
    with pytest.raises(CheckpointError, match=f"checkpoint {linear} is not from a char-RNN run"):
        load_char_rnn(linear)
    misfit = save_checkpoint(tmp_path / "misfit.ckpt", model, hyper_parameters={"vocab_size": 28})
    with pytest.raises(CheckpointError, match=f"checkpoint {misfit} does not fit a char-RNN"):
        load_char_rnn(misfit)
    words = save_checkpoint(tmp_path / "words.ckpt", model, tokenizer="words")
    with pytest.raises(CheckpointError, match="tokenizer 'words' is not one of d2l, chars"):
        load_char_rnn(words)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["prefix=abc"], "ckpt=<path to a .ckpt file> is required"),
        (["ckpt=x", "chars=5"], "unknown argument 'chars=5': use key=value with keys ckpt, "),
        (["ckpt=x", "num_chars=many"], "num_chars='many' must be an integer"),
        (["ckpt=x", "temperature=-1"], "temperature=-1.0 must be >= 0"),
        (["ckpt=x", "top_k=0"], "top_k=0 must be >= 1"),
    ],
)
def test_argument_mistakes_are_config_errors(argv, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        parse_args(argv)


def test_arguments_have_types_and_defaults():
    args = parse_args(["ckpt=a.ckpt", "temperature=0.5", "top_k=3", "prefix=x = y"])
    assert args == {
        "ckpt": "a.ckpt",
        "prefix": "x = y",
        "num_chars": 100,
        "temperature": 0.5,
        "top_k": 3,
        "seed": 0,
    }


# --- a data.tokenizer=chars run: train, checkpoint, generate ------------------------------------

PLAY = "ROMEO: Is it so?\nJULIET: It is, my love!\n" * 60  # 2,520 characters
CHARS_RUN = [  # README's "train on your own text", small and short
    "model=rnn",
    "data.tokenizer=chars",
    "callbacks.text_sample.prefix=ROMEO:",
    "model.cell=gru",
    "model.hidden_size=64",
    "model.num_layers=1",
    "model.dropout=0",
    "data.num_steps=32",
    "data.batch_size=8",
    "optimizer.lr=0.01",
    "trainer.max_epochs=30",
    "trainer.max_time=null",
    "callbacks.early_stopping=null",
    "callbacks.text_sample.every_n_epochs=30",
    "callbacks.progress_bar.refresh_rate=0",
    "device=cpu",
]


@pytest.fixture(scope="module")
def chars_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("chars")
    (root / "play.txt").write_text(PLAY, encoding="utf-8")
    run_dir = root / "run"
    train(compose_config([*CHARS_RUN, f"data.path={root / 'play.txt'}"], run_dir))
    return run_dir


def test_chars_checkpoint_carries_every_character_and_the_tokenizer(chars_run):
    checkpoint = torch.load(chars_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["tokenizer"] == "chars"
    assert checkpoint["vocab"] == sorted({"<unk>", *PLAY})
    events = EventAccumulator(str(chars_run))
    events.Reload()
    sample = events.Tensors("sample/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert sample.split("\n")[:3] == [  # a Markdown code block: lines and symbols as they are
        "    ROMEO: Is it so?",
        "    JULIET: It is, my love!",
        "    ROMEO: Is it so?",
    ]


def test_chars_generation_prints_the_punctuation_and_newlines_it_learned(chars_run):
    ckpt = chars_run / "checkpoints" / "last.ckpt"
    result = run_script(
        "generate.py", f"ckpt={ckpt}", "prefix=ROMEO:", "num_chars=80", cwd=chars_run
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ROMEO: Is it so?\nJULIET: It is, my love!\nROMEO:")
    with pytest.raises(ConfigError, match="prefix='Romeo and Juliet' has 'a', 'n', 'd', 'u', not"):
        main([f"ckpt={ckpt}", "prefix=Romeo and Juliet"])
    readme = main([f"ckpt={ckpt}", "prefix=ROMEO:", "num_chars=500", "temperature=0.8", "top_k=10"])
    assert readme.startswith("ROMEO:") and len(readme) == 506 and readme.count("\n") >= 10
