"""Character vocabulary and text clean-up: d2l 1.0's for The Time Machine, or every character.

The tokenizer (`data.tokenizer`) decides what text the model reads; a token is one character:
  d2l    text -> re.sub('[^A-Za-z]+', ' ', text).lower()   each run of non-letters becomes one space
  chars  text -> text                                     case, punctuation, digits, newlines kept
Then, as d2l 1.0 (`d2l.TimeMachine`, `d2l.Vocab`) does:
  tokens -> list(text)                                one token per character
  vocab  -> sorted(set(['<unk>'] + tokens))           alphabetical: ' ' < '<unk>' < 'a' ... 'z'

d2l 0.17 ordered its vocabulary by frequency with '<unk>' first instead; we follow 1.0, the book's
current edition. On The Time Machine the d2l vocabulary is [' ', '<unk>', 'a', ..., 'z'] (28
tokens).
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterable, Sequence

import torch

from handgrad.settings.data import TOKENIZERS

UNK = "<unk>"
NON_LETTERS = re.compile("[^A-Za-z]+")


def preprocess(text: str) -> str:
    """d2l's clean-up: runs of anything but ASCII letters become one space; then lower-case."""
    return NON_LETTERS.sub(" ", text).lower()


def clean(text: str, tokenizer: str) -> str:
    """`text` as a tokenizer reads it: d2l's clean-up (`d2l`), or as it is (`chars`)."""
    return preprocess(text) if tokenizer == "d2l" else text


class Vocab:
    """Character tokens <-> indices, and the tokenizer whose text they come from. Characters not
    in the vocabulary map to `<unk>`.

    Build one from (cleaned) text with `Vocab.build`; save it as the plain list `to_list()` and the
    string `tokenizer`, and restore it with `Vocab.from_list` (checkpoints carry only plain
    containers).
    """

    def __init__(self, idx_to_token: Sequence[str], tokenizer: str = "d2l") -> None:
        tokens = list(idx_to_token)
        if tokenizer not in TOKENIZERS:
            raise ValueError(f"tokenizer {tokenizer!r} is not one of {', '.join(TOKENIZERS)}")
        if UNK not in tokens:
            raise ValueError(f"a vocabulary needs the token {UNK!r}; got {tokens[:5]}...")
        if len(set(tokens)) != len(tokens) or not all(isinstance(t, str) and t for t in tokens):
            raise ValueError("vocabulary tokens must be distinct non-empty strings")
        self.idx_to_token = tokens
        self.tokenizer = tokenizer
        self.token_to_idx = {token: idx for idx, token in enumerate(tokens)}
        self.unk = self.token_to_idx[UNK]
        # Encoding looks characters up by code point: sorted code points of the 1-char tokens.
        chars = sorted((ord(t), i) for i, t in enumerate(tokens) if len(t) == 1)
        self._codepoints = torch.tensor([c for c, _ in chars], dtype=torch.int64)
        self._indices = torch.tensor([i for _, i in chars], dtype=torch.int64)

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        min_freq: int = 0,
        reserved_tokens: Iterable[str] = (),
        tokenizer: str = "d2l",
    ) -> Vocab:
        """d2l 1.0's `Vocab(tokens, min_freq, reserved_tokens)`: tokens seen >= min_freq times,
        plus '<unk>' and the reserved ones, sorted alphabetically."""
        counts = collections.Counter(tokens)
        kept = [token for token, freq in counts.items() if freq >= min_freq]
        return cls(sorted({UNK, *reserved_tokens, *kept}), tokenizer)

    @classmethod
    def from_list(cls, idx_to_token: Sequence[str], tokenizer: str = "d2l") -> Vocab:
        """The vocabulary whose `to_list()` and `tokenizer` gave `idx_to_token` and `tokenizer`."""
        return cls(idx_to_token, tokenizer)

    def to_list(self) -> list[str]:
        """The tokens in index order: a plain list that rebuilds this vocabulary."""
        return list(self.idx_to_token)

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def unknown_chars(self, text: str) -> list[str]:
        """The distinct characters of `text` that are not tokens of this vocabulary, in order."""
        return [char for char in dict.fromkeys(text) if char not in self.token_to_idx]

    def encode(self, text: str) -> torch.Tensor:
        """One index per character of `text` (a 1-D LongTensor), vectorised over code points.

        `text` is taken as is: `clean(text, vocab.tokenizer)` reads it as the training text was.
        """
        codepoints = torch.frombuffer(bytearray(text.encode("utf-32-le")), dtype=torch.int32)
        codepoints = codepoints.to(torch.int64)
        if len(self._codepoints) == 0:
            return torch.full_like(codepoints, self.unk)
        slot = torch.searchsorted(self._codepoints, codepoints).clamp(max=len(self._codepoints) - 1)
        known = self._codepoints[slot] == codepoints
        return torch.where(known, self._indices[slot], self.unk)

    def decode(self, indices: Iterable[int] | torch.Tensor) -> str:
        """The text of a sequence of indices (`<unk>` comes back as the string '<unk>')."""
        if isinstance(indices, torch.Tensor):
            indices = indices.reshape(-1).tolist()
        return "".join(self.idx_to_token[i] for i in indices)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} {self.tokenizer} tokens: {self.idx_to_token[:8]}...)"
