"""The Time Machine data: d2l's corpus facts, tokenizers, splits, samplers, download and file
errors."""

from __future__ import annotations

import hashlib
import io
import string

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from benchmarks.d2l_trainer import D2LUnavailable, import_d2l
from handgrad.data import download
from handgrad.data.timemachine import TimeMachineDataModule
from handgrad.data.token_windows import epoch_generator, random_plan, sequential_plan
from handgrad.data.vocab import Vocab, preprocess
from handgrad.errors import ConfigError, DataError
from helpers.runs import compose_config
from helpers.settings_errors import settings_error

BOOK_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
# sha1 of the book's d2l tokens (int64 bytes): the corpus the d2l parity tests below check
BOOK_TOKENS_SHA1 = "6f2d590717a481684e9f6274be217ef3d858c079"
OFFLINE_URL = "http://127.0.0.1:9/timemachine.txt"  # the discard port: refused at once, no network


@pytest.fixture
def book_data(time_machine):
    """Makes the real book's DataModule through the cache path (root holds the text: its sha1 is
    checked, no download)."""

    def make(**kwargs) -> TimeMachineDataModule:
        dm = TimeMachineDataModule(root=str(time_machine.parent), **kwargs)
        dm.setup()
        return dm

    return make


def epoch_positions(dm: TimeMachineDataModule, epoch: int) -> list[torch.Tensor]:
    sampler = dm.train_dataloader().sampler
    sampler.set_epoch(epoch)
    return list(sampler)


def text_file(tmp_path, text: str, name: str = "corpus.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- corpus and vocabulary ----------------------------------------------------------------------


def test_book_facts_match_d2l(book_data):
    dm = book_data()
    assert len(dm.tokens) == 173_428 and len(dm.vocab) == 28
    assert dm.vocab.idx_to_token == [" ", "<unk>", *string.ascii_lowercase]
    assert dm.model_facts() == {"vocab_size": 28, "block_size": dm.num_steps}
    assert dm.vocab.decode(dm.tokens[:16]) == "the time machine"
    assert dm.tokens.dtype == torch.int64


@pytest.mark.parametrize("split", ["holdout", "d2l", "first_tokens"])
def test_d2l_tokenizer_is_the_default_and_reads_the_book_as_d2l_does(book_data, split):
    dm = book_data(split=split)
    assert dm.tokenizer == dm.vocab.tokenizer == "d2l"
    assert hashlib.sha1(dm.tokens.numpy().tobytes()).hexdigest() == BOOK_TOKENS_SHA1
    assert dm.vocab.idx_to_token == [" ", "<unk>", *string.ascii_lowercase]


def test_chars_tokenizer_keeps_every_character_of_the_book(book_data, time_machine):
    dm = book_data(tokenizer="chars")
    raw = time_machine.read_text(encoding="utf-8")
    assert len(dm.tokens) == len(raw) and dm.vocab.decode(dm.tokens) == raw
    assert {"T", "\n", ",", "1", "["} <= set(dm.vocab.idx_to_token)


def test_chars_vocabulary_comes_from_the_training_text(tmp_path):
    text = "Hello, World!\nIt's 1984.\n" * 8 + "Zoë§"  # 204 characters; the last 20 validate
    dm = TimeMachineDataModule(
        path=str(text_file(tmp_path, text)), tokenizer="chars", num_steps=4, batch_size=2
    )
    dm.setup()
    assert dm.train_span == (0, 184) and dm.val_span == (184, 204)
    assert dm.vocab.to_list() == sorted({"<unk>", *"Hello, World!\nIt's 1984.\n"})
    assert dm.vocab.tokenizer == "chars"
    assert dm.vocab.decode(dm.tokens[:26]) == "Hello, World!\nIt's 1984.\nH"
    assert dm.vocab.decode(dm.tokens[-4:]) == "<unk>o<unk><unk>"  # seen only in validation
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (2, 4)


def test_vocab_is_d2l_sorted_round_trips_and_maps_unknowns(tmp_path):
    vocab = Vocab.build(preprocess("Hello, World!"), reserved_tokens=["<eos>"])
    assert vocab.to_list() == [" ", "<eos>", "<unk>", "d", "e", "h", "l", "o", "r", "w"]
    assert Vocab.build("aab", min_freq=2).to_list() == ["<unk>", "a"]
    torch.save({"vocab": vocab.to_list()}, tmp_path / "v.pt")
    restored = Vocab.from_list(torch.load(tmp_path / "v.pt", weights_only=True)["vocab"])
    assert restored.token_to_idx == vocab.token_to_idx
    encoded = restored.encode("hello zé")
    assert encoded.dtype == torch.int64 and encoded.shape == (8,)
    assert restored.decode(encoded) == "hello <unk><unk>"
    assert restored.decode(encoded.tolist()[:5]) == "hello"
    with pytest.raises(ValueError, match="<unk>"):
        Vocab.from_list(["a", "b"])
    chars = Vocab.from_list(["\n", "<unk>", "A", "b"], "chars")
    assert chars.tokenizer == "chars" and chars.unknown_chars("Ab\nAcé") == ["c", "é"]
    with pytest.raises(ValueError, match="tokenizer 'bytes' is not one of d2l, chars"):
        Vocab.from_list(["<unk>"], "bytes")


# --- splits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", ["random", "sequential"])
def test_holdout_training_never_touches_validation_tokens(book_data, sampling):
    dm = book_data(sampling=sampling)
    n = len(dm.tokens)
    val_lo = n - round(0.1 * n)
    assert dm.train_span == (0, val_lo) and dm.val_span == (val_lo, n)
    for epoch in range(3):
        batches = epoch_positions(dm, epoch)
        assert len(batches) == dm.num_train_batches == len(dm.train_dataloader())
        assert all(b.shape == (32, 35) for b in batches)
        assert max(int(b.max()) + 1 for b in batches) < val_lo  # the last target, too
    val = dm.val_batches
    assert min(int(b.min()) for b in val) >= val_lo
    targets = torch.cat([(b + 1).reshape(-1) for b in val])
    assert len(set(targets.tolist())) == len(targets)  # each validation token predicted once
    assert n - val_lo - 1 - len(targets) < dm.batch_size  # and all but < batch_size of them


def test_d2l_split_is_10000_then_5000_stride_one_windows(book_data):
    dm = book_data(split="d2l", batch_size=64, num_steps=35)
    train = torch.cat(epoch_positions(dm, 0))
    assert train.shape == (10_000, 35)
    assert torch.equal(train[:, 0].sort().values, torch.arange(10_000))
    val_loader = dm.val_dataloader()
    xs, ys = zip(*val_loader, strict=True)
    x, y = torch.cat(xs), torch.cat(ys)
    windows = dm.tokens.unfold(0, 36, 1)  # d2l: corpus[i:i+num_steps+1] for every i
    val_windows = windows[10_000:15_000]
    assert torch.equal(x, val_windows[:, :-1]) and torch.equal(y, val_windows[:, 1:])
    assert [len(b) for b in dm.val_batches[-2:]] == [64, 5_000 % 64]


def test_first_tokens_split_trains_on_the_first_10000_tokens_and_validates_on_the_tail(book_data):
    dm = book_data(split="first_tokens", sampling="sequential")
    assert dm.train_span == (0, 10_000) and dm.val_span == (156_085, 173_428)
    for epoch in range(3):
        assert max(int(b.max()) + 1 for b in epoch_positions(dm, epoch)) < 10_000


def d2l_017_sequential(corpus: list[int], batch_size: int, num_steps: int, offset: int):
    """d2l 0.17 `seq_data_iter_sequential` with its random offset given (the oracle)."""
    num_tokens = ((len(corpus) - offset - 1) // batch_size) * batch_size
    xs = torch.tensor(corpus[offset : offset + num_tokens]).reshape(batch_size, -1)
    ys = torch.tensor(corpus[offset + 1 : offset + 1 + num_tokens]).reshape(batch_size, -1)
    num_batches = xs.shape[1] // num_steps
    for i in range(0, num_steps * num_batches, num_steps):
        yield xs[:, i : i + num_steps], ys[:, i : i + num_steps]


@pytest.mark.parametrize("offset", [0, 3, 5])
def test_sequential_plan_matches_d2l_017(offset):
    corpus = torch.randint(0, 28, (503,), generator=torch.Generator().manual_seed(offset))
    plan = sequential_plan(0, len(corpus), 4, 5, offset)
    expected = list(d2l_017_sequential(corpus.tolist(), 4, 5, offset))
    assert len(plan) == len(expected)
    for positions, (x, y) in zip(plan, expected, strict=True):
        assert torch.equal(corpus[positions], x) and torch.equal(corpus[positions + 1], y)


def test_random_plan_is_d2l_017_windows():
    gen = torch.Generator().manual_seed(0)
    plan = random_plan(0, 503, 4, 5, 3, gen)
    starts = torch.cat(plan)[:, 0]
    assert len(plan) == ((503 - 3 - 1) // 5) // 4  # full batches only
    assert set(starts.tolist()) <= set(range(3, 503, 5))
    assert len(set(starts.tolist())) == len(starts)
    assert random_plan(0, 30, 8, 5, 0, gen) == []  # fewer windows than one batch: no batch


# --- sampling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["holdout", "first_tokens"])
def test_sequential_rows_continue_across_batches(book_data, split):
    dm = book_data(split=split, sampling="sequential")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    positions = list(loader.sampler)
    batches = list(loader)
    for k in range(len(batches) - 1):
        assert torch.equal(positions[k + 1][:, 0], positions[k][:, -1] + 1)
        assert torch.equal(batches[k + 1][0][:, 0], batches[k][1][:, -1])
    for (x, y), pos in zip(batches, positions, strict=True):
        assert torch.equal(x, dm.tokens[pos]) and torch.equal(y, dm.tokens[pos + 1])
    val = dm.val_batches  # validation rows continue too, with a narrower last batch
    assert all(torch.equal(b[:, 0], a[:, -1] + 1) for a, b in zip(val, val[1:], strict=False))


def test_random_sampling_covers_shuffled_windows_without_collation(book_data):
    dm = book_data(sampling="random")
    loader = dm.train_dataloader()
    assert loader.batch_size is None  # whole batches come from the sampler: no collation
    positions = epoch_positions(dm, 0)
    starts = torch.cat(positions)[:, 0]
    offset = int(starts.min()) % 35
    assert len(set(starts.tolist())) == len(starts) == dm.num_train_batches * 32
    assert bool(((starts - offset) % 35 == 0).all())  # non-overlapping windows
    assert not torch.equal(starts, starts.sort().values)  # shuffled
    x, y = next(iter(loader))
    assert x.shape == y.shape == (32, 35) and x.dtype == y.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])


@pytest.mark.parametrize(("split", "sampling"), [("holdout", "sequential"), ("d2l", "random")])
def test_epochs_are_reproducible_from_seed_and_epoch(book_data, split, sampling):
    a, b = (book_data(split=split, sampling=sampling, seed=7) for _ in range(2))
    other_seed = book_data(split=split, sampling=sampling, seed=8)
    epochs = [torch.cat(epoch_positions(a, e)) for e in range(4)]
    for e in (3, 0):  # any order: an epoch's batches depend on (seed, epoch) only
        assert torch.equal(torch.cat(epoch_positions(b, e)), epochs[e])
    assert any(not torch.equal(epochs[0], later) for later in epochs[1:])
    assert not torch.equal(torch.cat(epoch_positions(other_seed, 0)), epochs[0])


class FirstBatchRecorder(L.LightningModule):
    """Does nothing but remember the first training X of every epoch."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.firsts: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.firsts.append(batch[0].clone())
        return (self.w - 1).pow(2).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


@pytest.mark.filterwarnings("ignore:.*no `validation_step`")
def test_lightning_sets_the_epoch_of_the_sampler(book_data):
    dm = book_data(split="first_tokens", sampling="sequential", seed=3)
    model = FirstBatchRecorder()
    trainer = L.Trainer(
        max_epochs=4,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=dm)
    expected = [dm.tokens[epoch_positions(dm, e)[0]] for e in range(4)]
    assert len(model.firsts) == 4
    assert all(torch.equal(got, want) for got, want in zip(model.firsts, expected, strict=True))
    assert len({tuple(x[0, :5].tolist()) for x in model.firsts}) > 1  # offsets change per epoch


# --- download and files -------------------------------------------------------------------------


class FakeResponse(io.BytesIO):
    """What urlopen returns: a readable context manager."""


def test_offline_download_is_one_clear_data_error(tmp_path):
    dm = TimeMachineDataModule(root=str(tmp_path / "cache"), url=OFFLINE_URL)
    with pytest.raises(DataError) as info:
        dm.prepare_data()
    message = str(info.value)
    assert "\n" not in message and "127.0.0.1:9" in message and "data.path" in message
    assert str(tmp_path / "cache" / "timemachine.txt") in message
    assert list((tmp_path / "cache").iterdir()) == []  # no temp file left


def test_wrong_sha1_download_is_refused_and_nothing_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "urlopen", lambda url, timeout: FakeResponse(b"not the book"))
    url = "http://example.invalid/timemachine.txt"
    dm = TimeMachineDataModule(root=str(tmp_path), url=url, sha1=BOOK_SHA1)
    with pytest.raises(DataError, match=f"expected {BOOK_SHA1}"):
        dm.setup()
    assert list(tmp_path.iterdir()) == []


def test_download_cut_off_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    class CutOff(FakeResponse):
        def read(self, size=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset by peer")
            return super().read(4)

    monkeypatch.setattr(download, "urlopen", lambda url, timeout: CutOff(b"the time machine"))
    with pytest.raises(DataError, match="connection reset"):
        download.cached_download("http://example.invalid/t.txt", tmp_path, sha1=None)
    assert list(tmp_path.iterdir()) == []


def test_download_is_verified_written_once_and_then_read_from_the_cache(
    time_machine, tmp_path, monkeypatch
):
    book = time_machine.read_bytes()
    monkeypatch.setattr(download, "urlopen", lambda url, timeout: FakeResponse(book))
    dm = TimeMachineDataModule(root=str(tmp_path))  # the default url: its known sha1 is checked
    dm.prepare_data()
    assert [p.name for p in tmp_path.iterdir()] == ["timemachine.txt"]
    assert download.sha1_of(tmp_path / "timemachine.txt") == BOOK_SHA1

    def no_network(url, timeout):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(download, "urlopen", no_network)
    assert len(TimeMachineDataModule(root=str(tmp_path)).vocab) == 28


def test_a_wrong_file_in_the_cache_is_refused_not_replaced(tmp_path):
    cached = text_file(tmp_path, "some other text", name="timemachine.txt")
    dm = TimeMachineDataModule(root=str(tmp_path))
    with pytest.raises(DataError, match="delete it") as info:
        dm.setup()
    assert str(cached) in str(info.value)
    assert cached.read_text() == "some other text"


def test_a_custom_utf8_file_is_the_corpus(tmp_path):
    path = text_file(tmp_path, "Über the lazy dog — 42 times! " * 40)
    dm = TimeMachineDataModule(path=str(path), num_steps=5, batch_size=4, val_fraction=0.2)
    assert dm.vocab.to_list() == [" ", "<unk>", *sorted(set("berthelazydogtimes"))]
    assert dm.vocab.decode(dm.tokens[:18]) == " ber the lazy dog "  # 'Ü' is not A-Z: a space
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == y.shape == (4, 5)
    with pytest.raises(DataError, match="expected"):
        TimeMachineDataModule(path=str(path), sha1="0" * 40).setup()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "does not exist"),
        (b"caf\xe9 latte", "not UTF-8"),
        (b"", "is empty"),
        ("1984 -- 2001: ¿?".encode(), "no ASCII letters.*data.tokenizer=chars"),
    ],
)
def test_unusable_files_name_the_file(tmp_path, content, problem):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=problem) as info:
        TimeMachineDataModule(path=str(path)).setup()
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"split": "random"}, "data.split"),
        ({"tokenizer": "words"}, "data.tokenizer='words' is not one of d2l, chars"),
        ({"sampling": "shuffled"}, "data.sampling"),
        ({"split": "d2l", "sampling": "sequential"}, "data.sampling"),
        ({"num_steps": 0}, "data.num_steps"),
        ({"batch_size": 2.5}, "data.batch_size"),
        ({"val_fraction": 1.0}, "data.val_fraction"),
        ({"max_tokens": 1}, "data.max_tokens"),
        ({"sha1": "abc"}, "data.sha1"),
    ],
)
def test_bad_knobs_are_config_errors(kwargs, key):
    values = {f"data.{name}": value for name, value in kwargs.items()}
    assert key in settings_error(["model=rnn"], values)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"num_steps": 3000, "batch_size": 64}, "data.num_steps=3000"),
        ({"split": "first_tokens", "max_tokens": 160_000}, "data.max_tokens=160000"),
        ({"split": "d2l", "max_tokens": 12_000}, "data.split=d2l"),
    ],
)
def test_knobs_too_big_for_the_corpus_are_config_errors(book_data, kwargs, key):
    with pytest.raises(ConfigError, match=key):
        book_data(**kwargs)


def test_config_composes_and_root_follows_handgrad_data(time_machine, tmp_path, monkeypatch):
    monkeypatch.delenv("HANDGRAD_DATA", raising=False)
    cfg = compose_config(["data=timemachine"], tmp_path)
    assert cfg.data.root == "~/.cache/handgrad" and cfg.data.split == "holdout"
    assert cfg.data.tokenizer == "d2l"
    monkeypatch.setenv("HANDGRAD_DATA", str(time_machine.parent))
    cfg = compose_config(["data=timemachine", "seed=5"], tmp_path)
    dm = instantiate(cfg.data, _convert_="all")
    assert (dm.seed, dm.sampling, dm.batch_size, dm.num_steps) == (5, "random", 32, 35)
    assert dm.model_facts() == {"vocab_size": 28, "block_size": dm.num_steps}


# --- parity with d2l 1.0.3 (`make setup` installs it) ---------------------------------------------


@pytest.fixture(scope="module")
def d2l_book(time_machine):
    """d2l 1.0.3's `TimeMachine(batch_size=32, num_steps=35)` read from the real book;
    a skip naming the reason where d2l.torch does not import."""
    try:
        d2l = import_d2l()  # with a stand-in for a torchvision that does not load (see there)
    except D2LUnavailable as exc:  # not installed, or a module it imports is missing or broken
        pytest.skip(str(exc))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(d2l.TimeMachine, "_download", lambda self: time_machine.read_text())
        return d2l.TimeMachine(batch_size=32, num_steps=35)


def test_vocabulary_corpus_and_windows_match_d2l(d2l_book, book_data, time_machine):
    ours = book_data(split="d2l")
    assert ours.vocab.idx_to_token == list(d2l_book.vocab.idx_to_token)
    corpus, _ = d2l_book.build(time_machine.read_text())
    assert ours.tokens.tolist() == list(corpus)
    train = torch.cat(epoch_positions(ours, 0))
    train = train[train[:, 0].argsort()]  # our shuffled windows, back in d2l's order
    assert torch.equal(ours.tokens[train], d2l_book.X[:10_000])
    assert torch.equal(ours.tokens[train + 1], d2l_book.Y[:10_000])


def test_validation_batches_are_d2ls_in_order(d2l_book, book_data):
    ours = book_data(split="d2l").val_dataloader()
    theirs = d2l_book.val_dataloader()
    assert len(ours) == len(theirs) == 157  # 5,000 windows: 156 batches of 32 and one of 8
    for (x, y), (their_x, their_y) in zip(ours, theirs, strict=True):
        assert torch.equal(x, their_x) and torch.equal(y, their_y)


@pytest.mark.parametrize("epoch", [0, 3])
def test_training_batches_are_d2ls_for_the_same_shuffle(d2l_book, book_data, epoch):
    """d2l shuffles with torch's RandomSampler (one randperm of the 10,000 windows per epoch)
    from the global RNG; given our epoch's generator it draws our permutation, and its DataLoader
    then yields exactly our batches, in our order."""
    ours = book_data(split="d2l", seed=5).train_dataloader()
    ours.sampler.set_epoch(epoch)
    theirs = d2l_book.train_dataloader()
    theirs.sampler.generator = epoch_generator(5, epoch)
    assert len(ours) == len(theirs) == 313  # 312 batches of 32 and one of 16
    for (x, y), (their_x, their_y) in zip(ours, theirs, strict=True):
        assert torch.equal(x, their_x) and torch.equal(y, their_y)
