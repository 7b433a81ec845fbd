"""The d2l book's own training loop as a reference: d2l 1.0.3's `d2l.Trainer` fitting
`d2l.RNNLMScratch(d2l.RNNScratch(...))` on `d2l.TimeMachine`, as the book's §9.5 runs it.

The run is what a reader of the book runs, plotting included: `d2l.Module.plot` feeds a
`ProgressBoard` that redraws its matplotlib figure every half epoch of training batches and after
each validation. Matplotlib gets the non-interactive Agg backend (no window; outside a notebook
IPython's `display` prints the figure's repr), and the seconds spent in `ProgressBoard.draw` are
counted, so the share of the fit that is plotting is known.

d2l reads its text from `../data/timemachine.txt` relative to the working directory (downloading
it when the file is missing or its sha1 differs); the run copies the project's corpus there and
works from a directory beside it, so it reads the same text and never touches the network.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType

import torch

D2L_BOOK_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"  # d2l's own check of timemachine.txt


class D2LUnavailable(Exception):
    """d2l cannot run here (not installed, or a module it imports is missing or broken)."""


def import_d2l() -> ModuleType:
    """`d2l.torch`, importable beside a CPU torch with no working torchvision.

    d2l.torch imports torchvision at module level but uses it only for its image datasets, never
    for The Time Machine; PyPI's only torchvision wheels for torch 2.13 are CUDA builds that do
    not load beside the CPU torch. Where torchvision does not import, an empty module stands in
    for it (any use of it would fail, so the run cannot lean on it).
    """
    os.environ["MPLBACKEND"] = "Agg"  # before d2l imports pyplot
    try:
        import torchvision  # noqa: F401
    except Exception:
        stand_in = ModuleType("torchvision")
        stand_in.transforms = ModuleType("torchvision.transforms")
        sys.modules["torchvision"] = stand_in
        sys.modules["torchvision.transforms"] = stand_in.transforms
    try:
        from d2l import torch as d2l
    except Exception as exc:
        raise D2LUnavailable(f"d2l.torch does not import ({type(exc).__name__}: {exc})") from exc
    return d2l


def fit_d2l(spec: dict, work: Path) -> dict:
    """Fit the book's model with `d2l.Trainer` (spec: corpus, batch_size, num_steps,
    hidden_size, lr, clip, epochs, seed); whole-fit seconds, the seconds of plotting, and the
    final validation perplexity two ways. Returns `{"skipped": reason}` where d2l cannot run."""
    corpus = Path(spec["corpus"])
    sha1 = hashlib.sha1(corpus.read_bytes()).hexdigest()
    if sha1 != D2L_BOOK_SHA1:
        return {"skipped": f"{corpus} is not d2l's timemachine.txt (sha1 {sha1})"}
    try:
        d2l = import_d2l()
    except D2LUnavailable as exc:
        return {"skipped": str(exc)}
    (work / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus, work / "data" / "timemachine.txt")
    (work / "cwd").mkdir(exist_ok=True)
    os.chdir(work / "cwd")  # d2l's data dir is ../data
    torch.manual_seed(spec["seed"])
    data = d2l.TimeMachine(batch_size=spec["batch_size"], num_steps=spec["num_steps"])
    rnn = d2l.RNNScratch(num_inputs=len(data.vocab), num_hiddens=spec["hidden_size"])
    model = d2l.RNNLMScratch(rnn, vocab_size=len(data.vocab), lr=spec["lr"])
    trainer = d2l.Trainer(max_epochs=spec["epochs"], gradient_clip_val=spec["clip"])
    plot_clock = count_seconds(d2l.ProgressBoard, "draw")
    start = time.perf_counter()
    trainer.fit(model, data)
    fit_s = time.perf_counter() - start
    return {
        "fit_s": fit_s,
        "plot_s": plot_clock["seconds"],
        "steps": trainer.train_batch_idx,
        "epochs": spec["epochs"],
        "val_ppl": math.exp(mean_cross_entropy(model, data.val_dataloader())),
        "d2l_val_ppl": float(model.board.data["val_ppl"][-1].y),
    }


def count_seconds(cls: type, name: str) -> dict:
    """Wrap method `name` of `cls` so that its calls' seconds add up in the returned dict."""
    method = getattr(cls, name)
    clock = {"seconds": 0.0}

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            clock["seconds"] += time.perf_counter() - start

    setattr(cls, name, timed)
    return clock


@torch.no_grad()
def mean_cross_entropy(model, batches) -> float:
    """Token-weighted mean cross-entropy over `batches` (the project's `val/ppl` is its exp;
    d2l's printed ppl is the mean of each batch's exp)."""
    total, count = 0.0, 0
    for x, y in batches:
        total += float(model.loss(model(x), y, averaged=False).sum())
        count += y.numel()
    return total / count
