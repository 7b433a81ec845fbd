"""Generate text with a trained char-RNN or GPT: `scripts/generate.py ckpt=<file.ckpt> [key=value]`.

Keys (all but ckpt optional):
  ckpt=<path>            a checkpoint of a `model=rnn` or `model=gpt` run (it has its vocabulary)
  prefix="time traveller "  the text to continue; the model first reads all of it (warm-up)
  num_chars=100          how many characters to generate after the prefix
  temperature=0          0: greedy, always the most likely next character (d2l's `predict`);
                         > 0: sample from softmax(logits / temperature)
  top_k=<k>              with temperature > 0: sample among the k most likely characters only
  seed=0                 the sampling generator's seed (same seed, same text)

The prefix is read as the training text was (the checkpoint stores its data.tokenizer):
  d2l    cleaned like d2l's text: every run of characters other than the ASCII letters becomes one
         space, then lower case, so "The Time-Traveller!" is read as "the time traveller ". A
         letter the checkpoint's vocabulary lacks (possible with a custom corpus) reads as <unk>.
  chars  as it is; a character the training text never had is an error naming it.
The char-RNN reads the prefix once and then each new character with its carried state; the GPT
reads the last `block_size` characters (its training window, data.num_steps) for every new one.
The printed text starts with the prefix as read, newlines print as newlines, and a generated
`<unk>` prints as the string "<unk>". An empty prefix is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from handgrad.data.vocab import Vocab, clean
from handgrad.errors import CheckpointError, ConfigError, HandgradError, require
from handgrad.run.checkpoint_reading import load_checkpoint

if TYPE_CHECKING:
    from handgrad.models.char_rnn import CharRNN
    from handgrad.models.gpt import GPT

DEFAULTS = {
    "ckpt": None,
    "prefix": "time traveller ",
    "num_chars": 100,
    "temperature": 0.0,
    "top_k": None,
    "seed": 0,
}
TYPES = {
    "ckpt": str,
    "prefix": str,
    "num_chars": int,
    "temperature": float,
    "top_k": int,
    "seed": int,
}


def next_token(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator
) -> int:
    """Argmax when temperature is 0; else a draw from softmax(logits / temperature), top-k cut."""
    if temperature == 0:
        return int(logits.argmax())
    logits = logits.float().cpu() / temperature
    if top_k is not None and top_k < logits.numel():
        kth_largest = logits.topk(top_k).values[-1]
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


@torch.no_grad()
def generate(
    model: CharRNN | GPT,
    vocab: Vocab,
    prefix: str,
    num_chars: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """The prefix as read (`read_prefix`) followed by `num_chars` generated characters.

    Char-RNN: the model reads the whole prefix in one call (the state after its last character
    and the logits there); then each step picks a character and feeds it back in. GPT
    (`generate_gpt`): each step reads the last `block_size` characters.
    """
    text = read_prefix(prefix, vocab)
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    if _is_gpt(model):
        generated = generate_gpt(
            model, vocab.encode(text), num_chars, temperature, top_k, generator
        )
        model.train(was_training)
        return text + vocab.decode(generated)
    tokens = vocab.encode(text).to(model.device).unsqueeze(1)  # (T x 1)
    logits, state = model(tokens)
    generated = []
    for _ in range(num_chars):
        token = next_token(logits[-1, 0], temperature, top_k, generator)
        generated.append(token)
        logits, state = model(torch.tensor([[token]], device=model.device), state)
    model.train(was_training)
    return text + vocab.decode(generated)


def generate_gpt(
    model: GPT,
    tokens: torch.Tensor,
    num_chars: int,
    temperature: float,
    top_k: int | None,
    generator: torch.Generator,
) -> list[int]:
    """`num_chars` tokens after `tokens` (T): each from the logits at the last position of the
    context, the latest `model.block_size` tokens (the positions the model has), as nanoGPT's
    `generate` crops it."""
    context = tokens.to(model.device)
    generated = []
    for _ in range(num_chars):
        logits = model(context[-model.block_size :].unsqueeze(0))  # (1 x T x V)
        token = next_token(logits[0, -1], temperature, top_k, generator)
        generated.append(token)
        context = torch.cat([context, context.new_tensor([token])])
    return generated


def _is_gpt(model) -> bool:
    from handgrad.models.gpt import GPT  # Lightning: only once a model is there

    return isinstance(model, GPT)


def read_prefix(prefix: str, vocab: Vocab, key: str = "prefix") -> str:
    """`prefix` as the model reads it, cleaned by the vocabulary's tokenizer (`key` names it in
    errors): d2l's clean-up, where a letter the vocabulary lacks reads as `<unk>`; or (chars) as it
    is, where a character the vocabulary lacks is a ConfigError naming it."""
    require(prefix != "", f"{key} is empty: give at least one character to start from")
    text = clean(prefix, vocab.tokenizer)
    unknown = vocab.unknown_chars(text) if vocab.tokenizer == "chars" else []
    require(
        not unknown,
        f"{key}={prefix!r} has {', '.join(map(repr, unknown))}, not in the model's vocabulary "
        "(the characters of its training text); start from characters that text has",
    )
    return text


def load_char_rnn(path: str | Path) -> tuple[CharRNN, Vocab]:
    """The char-RNN and vocabulary (with its tokenizer) of a checkpoint, loaded with
    `torch.load(weights_only=True)`. A checkpoint without a tokenizer is from a d2l run."""
    from handgrad.models.char_rnn import CharRNN  # Lightning: only when a checkpoint is asked for

    return _load(path, CharRNN, "char-RNN", "rnn")


def load_gpt(path: str | Path) -> tuple[GPT, Vocab]:
    """The GPT and vocabulary (with its tokenizer) of a `model=gpt` checkpoint, loaded with
    `torch.load(weights_only=True)`."""
    from handgrad.models.gpt import GPT  # Lightning: only when a checkpoint is asked for

    return _load(path, GPT, "GPT", "gpt")


def _load(path: str | Path, model_class: type, kind: str, option: str) -> tuple:
    """`model_class` built from a checkpoint's hyperparameters and weights, and its vocabulary;
    a CheckpointError naming the file and the `kind` of run it should come from."""
    path = Path(path)
    checkpoint = load_checkpoint(path, keys=())
    keys = ("vocab", "state_dict", "hyper_parameters")
    if not isinstance(checkpoint, dict) or not all(key in checkpoint for key in keys):
        raise CheckpointError(
            f"checkpoint {path} is not from a {kind} run (no vocabulary); "
            f"train one with `scripts/train.py model={option}`"
        )
    try:
        vocab = Vocab.from_list(checkpoint["vocab"], checkpoint.get("tokenizer", "d2l"))
        model = model_class(**checkpoint["hyper_parameters"])
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError, HandgradError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit a {kind}: {exc}") from exc
    return model, vocab


def load_language_model(path: str | Path) -> tuple[CharRNN | GPT, Vocab]:
    """A checkpoint's model and vocabulary: a GPT's (its hyperparameters have `n_layer`), else
    a char-RNN's (`load_char_rnn`, whose errors say what a checkpoint lacks)."""
    checkpoint = load_checkpoint(Path(path), keys=())
    hyper_parameters = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if isinstance(hyper_parameters, dict) and "n_layer" in hyper_parameters:
        return load_gpt(path)
    return load_char_rnn(path)


def parse_args(argv: list[str]) -> dict:
    """key=value arguments over DEFAULTS, converted to their types; ckpt is required."""
    args = dict(DEFAULTS)
    for arg in argv:
        key, sep, value = arg.partition("=")
        require(
            sep == "=" and key in DEFAULTS,
            f"unknown argument {arg!r}: use key=value with keys {', '.join(DEFAULTS)}",
        )
        try:
            args[key] = TYPES[key](value)
        except ValueError:
            kind = "an integer" if TYPES[key] is int else "a number"
            raise ConfigError(f"{key}={value!r} must be {kind}") from None
    require(args["ckpt"] is not None, "ckpt=<path to a .ckpt file> is required")
    require(args["num_chars"] >= 0, f"num_chars={args['num_chars']} must be >= 0")
    require(args["temperature"] >= 0, f"temperature={args['temperature']} must be >= 0")
    require(args["top_k"] is None or args["top_k"] >= 1, f"top_k={args['top_k']} must be >= 1")
    return args


def main(argv: list[str]) -> str:
    """Parse the arguments, load the checkpoint, return the generated text."""
    args = parse_args(argv)
    model, vocab = load_language_model(args.pop("ckpt"))
    return generate(model, vocab, **args)
