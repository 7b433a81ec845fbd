"""H. G. Wells' The Time Machine as character-level language-model batches (d2l's corpus).

The text is d2l's `timemachine.txt`, downloaded once into `root` (or any UTF-8 file given as
`path`), one token per character (see `handgrad.data.vocab`). `tokenizer` says which characters:
- d2l: cleaned and tokenized exactly as d2l 1.0 does (letters and space, lower case): 173,428
  tokens over a vocabulary of 28 for the book; the vocabulary comes from the whole text, as in d2l.
- chars: every character as it is (case, punctuation, digits, newlines). The vocabulary comes from
  the training tokens only; a character that appears only in validation text reads as `<unk>`.
Batches are (X, Y) LongTensors, Y = X shifted by one.

Splits (`split`):
- holdout: the last `val_fraction` of the tokens validate; training uses only the tokens before
  them (no training target reaches a validation token).
- d2l: d2l 1.0 `TimeMachine`: every stride-1 window of num_steps + 1 tokens; windows 0..9,999
  train, 10,000..14,999 validate (they share tokens with the last training windows, as in d2l).
- first_tokens: d2l 0.17 `load_data_time_machine(batch_size, num_steps)`: trains on the first
  max_tokens (default 10,000) tokens; d2l had no validation set, so it validates on the holdout
  tail (the last `val_fraction` of the book), comparable with holdout runs.

Sampling (`sampling`, holdout and first_tokens): `random` shuffles non-overlapping windows (a model
starts each batch from a fresh state); `sequential` makes row i of batch k+1 continue row i of
batch k (a model carries its state across batches and resets it at the start of each epoch).
Each training epoch draws its random offset and order from (seed, epoch); see `token_windows.py`.
Validation is deterministic: holdout and first_tokens validate on the sequential cut of the
validation tokens at offset 0 (the last batch may have fewer steps), d2l on its 5,000 windows in
order.

The corpus is read on first use (`setup`, `vocab`, `model_facts`), not when the module is built.
"""

from __future__ import annotations

from pathlib import Path

import torch

from handgrad.data.download import cached_download, check_sha1
from handgrad.data.resume_position import ResumableDataModule
from handgrad.data.row_batches import rank_and_world, rank_share
from handgrad.data.token_windows import (
    EpochBatches,
    epoch_generator,
    random_plan,
    row_block,
    sequential_plan,
    window_loader,
    window_plan,
)
from handgrad.data.vocab import Vocab, clean
from handgrad.errors import DataError, require

TIME_MACHINE_URL = "http://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
KNOWN_SHA1 = {TIME_MACHINE_URL: "090b5e7e70c295757f55df93cb0a180b9691891a"}
D2L_NUM_TRAIN, D2L_NUM_VAL = 10_000, 5_000  # d2l 1.0 TimeMachine(num_train, num_val) defaults
FIRST_TOKENS_DEFAULT = 10_000  # d2l 0.17 load_data_time_machine(max_tokens=10000)


def read_text(path: Path) -> str:
    """The UTF-8 text of `path`; a one-line DataError naming the file for every way it can fail."""
    fix = "point data.path at a UTF-8 text file, or set data.path=null for The Time Machine"
    if not path.is_file():
        raise DataError(f"data.path={path} does not exist or is not a file; {fix}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start}: {exc.reason}"
        raise DataError(f"{path} is not UTF-8 text ({where}); {fix}") from exc
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror}); {fix}") from exc
    if not text:
        raise DataError(f"{path} is empty; {fix}")
    return text


def corpus_text(text: str, tokenizer: str, source: Path) -> str:
    """The characters the model reads from `text` (read from `source`, named in errors)."""
    chars = clean(text, tokenizer)
    if tokenizer == "d2l" and not chars.strip():
        raise DataError(
            f"{source} has no ASCII letters, so d2l's clean-up (keep only A-Z, a-z) leaves "
            "nothing to learn; point data.path at English text, or keep every character with "
            "data.tokenizer=chars"
        )
    return chars


class TimeMachineDataModule(ResumableDataModule):
    """Character-level language-model batches of The Time Machine (see the module docstring).

    For the model: `vocab` (a `Vocab`), `sampling`, `rows_continue`, `batch_size`, `num_steps`,
    `model_facts()`.
    """

    def __init__(
        self,
        path: str | None = None,
        root: str = "~/.cache/handgrad",
        url: str = TIME_MACHINE_URL,
        sha1: str | None = None,
        tokenizer: str = "d2l",
        split: str = "holdout",
        val_fraction: float = 0.1,
        num_steps: int = 35,
        batch_size: int = 32,
        sampling: str = "random",
        max_tokens: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.path = Path(path).expanduser() if path else None
        self.root = Path(root).expanduser()
        self.url, self.sha1, self.tokenizer = url, sha1, tokenizer
        self.split, self.sampling = split, sampling
        self.val_fraction, self.max_tokens = val_fraction, max_tokens
        self.num_steps, self.batch_size, self.seed = num_steps, batch_size, seed
        self._vocab: Vocab | None = None
        self.tokens: torch.Tensor | None = None  # the whole corpus as token indices, by setup()
        self.save_hyperparameters(logger=False)

    @property
    def rows_continue(self) -> bool:
        """Row i of training batch k+1 continues row i of batch k (sequential sampling), so a
        model carries its state from one batch to the next."""
        return self.sampling == "sequential"

    # --- the corpus -----------------------------------------------------------------------------

    def corpus_file(self) -> Path:
        """`data.path` (checked against data.sha1 if set) or the cached download of `data.url`."""
        if self.path is not None:
            if self.path.is_file():
                check_sha1(self.path, self.sha1, fix="use the right file or set data.sha1=null")
            return self.path
        return cached_download(self.url, self.root, self.sha1 or KNOWN_SHA1.get(self.url))

    def prepare_data(self) -> None:
        """Download the text if needed (Lightning calls this once per machine)."""
        self.corpus_file()

    def setup(self, stage: str | None = None) -> None:
        """Read and tokenize the corpus and plan the split (once; later calls do nothing)."""
        if self._vocab is not None:
            return
        source = self.corpus_file()
        text = corpus_text(read_text(source), self.tokenizer, source)
        if self.split == "d2l":
            self._plan_d2l(len(text))
        else:
            self._plan_offset_split(len(text))
        lo, hi = self.train_span
        vocab_text = text[lo:hi] if self.tokenizer == "chars" else text  # d2l: the whole text
        vocab = Vocab.build(vocab_text, tokenizer=self.tokenizer)
        self.tokens = vocab.encode(text)
        self._vocab = vocab

    @property
    def vocab(self) -> Vocab:
        self.setup()
        return self._vocab

    def model_facts(self) -> dict[str, int]:
        """What a model may need to know about this data to be built: the vocabulary size, and
        the window length as a block size (the positions a Transformer must hold)."""
        return {"vocab_size": len(self.vocab), "block_size": self.num_steps}

    # --- splits ---------------------------------------------------------------------------------

    # The plans, given the corpus length n, set `train_span` and `val_span`: the half-open token
    # ranges that each split's X and Y cover, and the batches: `_train_plan(epoch)`,
    # `num_train_batches`, `val_batches`.

    def _plan_d2l(self, n: int) -> None:
        steps = self.num_steps
        windows = min(n, self.max_tokens or n) - steps
        require(
            windows >= D2L_NUM_TRAIN + D2L_NUM_VAL,
            f"data.split=d2l needs {D2L_NUM_TRAIN + D2L_NUM_VAL} windows of "
            f"data.num_steps+1={steps + 1} tokens; the corpus has {max(windows, 0)}",
        )
        self.train_span = (0, D2L_NUM_TRAIN + steps)
        self.val_span = (D2L_NUM_TRAIN, D2L_NUM_TRAIN + D2L_NUM_VAL + steps)
        self._train_plan = self._d2l_train_plan
        self.num_train_batches = -(-D2L_NUM_TRAIN // self.batch_size)
        val_starts = torch.arange(D2L_NUM_TRAIN, D2L_NUM_TRAIN + D2L_NUM_VAL)
        self.val_batches = window_plan(val_starts, self.batch_size, steps)

    def _plan_offset_split(self, n: int) -> None:
        """holdout: [train | val] within the first max_tokens; first_tokens: the first max_tokens
        (default 10,000) train, the tail of the whole book validates (of n tokens)."""
        if self.split == "holdout":
            n = min(n, self.max_tokens or n)
        val_lo = n - round(n * self.val_fraction)
        train_hi = val_lo if self.split == "holdout" else self.max_tokens or FIRST_TOKENS_DEFAULT
        require(
            train_hi <= val_lo,
            f"data.max_tokens={train_hi} reaches into the validation tail (the last "
            f"{n - val_lo} tokens); use at most {val_lo}",
        )
        self.train_span, self.val_span = (0, train_hi), (val_lo, n)
        self._train_plan = self._offset_train_plan
        # Every epoch gets as many batches as the largest offset allows (d2l's count varies by 1).
        self.num_train_batches = len(self._offset_plan(self._max_offset, torch.Generator()))
        self.val_batches = sequential_plan(
            val_lo, n, self.batch_size, self.num_steps, offset=0, ragged=True
        )
        for name, (lo, hi), count in (
            ("training", self.train_span, self.num_train_batches),
            ("validation", self.val_span, len(self.val_batches)),
        ):
            require(
                count >= 1,
                f"data.batch_size={self.batch_size} x data.num_steps={self.num_steps} is too "
                f"big for the {hi - lo} {name} tokens of data.split={self.split}; lower them",
            )

    def _offset_plan(self, offset: int, gen: torch.Generator) -> list[torch.Tensor]:
        lo, hi = self.train_span
        if self.sampling == "sequential":
            return sequential_plan(lo, hi, self.batch_size, self.num_steps, offset)
        return random_plan(lo, hi, self.batch_size, self.num_steps, offset, gen)

    @property
    def _max_offset(self) -> int:
        """d2l 0.17 draws offsets in [0, num_steps] (sequential) or [0, num_steps - 1] (random)."""
        return self.num_steps if self.sampling == "sequential" else self.num_steps - 1

    def _offset_train_plan(self, epoch: int) -> list[torch.Tensor]:
        """d2l 0.17's epoch: a random offset, then the sequential or random cut after it."""
        gen = epoch_generator(self.seed, epoch)
        offset = int(torch.randint(0, self._max_offset + 1, (), generator=gen))
        return self._offset_plan(offset, gen)

    def _d2l_train_plan(self, epoch: int) -> list[torch.Tensor]:
        """d2l 1.0's epoch: the 10,000 training windows shuffled."""
        order = torch.randperm(D2L_NUM_TRAIN, generator=epoch_generator(self.seed, epoch))
        return window_plan(order, self.batch_size, self.num_steps)

    # --- loaders --------------------------------------------------------------------------------

    # Under DDP each loader serves this rank's part (rank and world size from the trainer):
    # sequential batches are split by rows (`row_block`, so every rank's rows still continue),
    # shuffled ones dealt out whole (`rank_share`, equally many per training rank).

    def train_dataloader(self):
        self.setup()
        rank, world_size = rank_and_world(self)
        plan, total = self._train_plan, self.num_train_batches
        count = total
        if world_size > 1 and self.sampling == "sequential":
            self._check_rows_per_rank(world_size)

            def plan(epoch):
                return row_block(self._train_plan(epoch)[:total], rank, world_size)

        elif world_size > 1:

            def plan(epoch):
                return rank_share(self._train_plan(epoch)[:total], rank, world_size)

            count = -(-total // world_size)
        return window_loader(self.tokens, EpochBatches(plan, count, self.resume_position))

    def val_dataloader(self):
        self.setup()
        rank, world_size = rank_and_world(self)
        if self.split == "d2l":
            batches = rank_share(self.val_batches, rank, world_size, pad=False)
        else:
            self._check_rows_per_rank(world_size)
            batches = row_block(self.val_batches, rank, world_size)
        return window_loader(self.tokens, EpochBatches(lambda epoch: batches, len(batches)))

    def _check_rows_per_rank(self, world_size: int) -> None:
        require(
            self.batch_size >= world_size,
            f"data.batch_size={self.batch_size} is smaller than the {world_size} DDP processes: "
            "sequential batches are split by rows across them; use data.batch_size >= "
            f"{world_size}",
        )
