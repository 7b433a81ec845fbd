"""`model.compile`: a function run through torch.compile, or eagerly when compiling fails.

torch.compile is lazy: `CompiledFunction` compiles on its first call (TorchDynamo traces the
Python function into a graph, TorchInductor generates C++ for it). Graphs are compiled for fixed
shapes (`dynamic=False`): a call with a new input shape (a last, shorter batch), dtype or grad mode
compiles one more graph, and each is reused for every later call that matches it. Inductor keeps
what it generates in an on-disk cache (its FX graph cache, in `$TORCHINDUCTOR_CACHE_DIR`, by
default `<tmp>/torchinductor_<user>`), so a later run with the same shapes skips most of the code
generation; the tracing is done again in every process.

When compiling fails (no C compiler, an operator the compiler cannot handle, a Python version
torch.compile does not support, ...), one warning line names the function and the error, and the
function runs eagerly from then on: the run goes on as it would with `model.compile=false`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch._dynamo.exc import TorchDynamoException
from torch._dynamo.utils import calculate_time_spent

from handgrad.errors import first_line

log = logging.getLogger(__name__)


class CompiledFunction:
    """`fn` through `torch.compile(fn, dynamic=False)`, made on the first call; `fn` itself once
    compiling failed.

    What counts as a compile failure: torch.compile refusing the platform (a RuntimeError when it
    is called) and any TorchDynamoException from a call (the compiler's errors arrive as these,
    e.g. BackendCompilerFailed). An error the compiled code raises while it runs is not one.
    """

    def __init__(self, fn: Callable, dynamo_config: dict | None = None):
        self.eager = fn
        self.dynamo_config = dynamo_config or {}  # torch._dynamo.config settings while compiling
        self.compiled: Callable | None = None
        self.failed = False

    def __call__(self, *args):
        if self.compiled is None and not self.failed:
            try:
                self.compiled = torch.compile(self.eager, dynamic=False)
            except RuntimeError as exc:
                self.fall_back(exc)
        if self.failed:
            return self.eager(*args)
        try:
            with torch._dynamo.config.patch(**self.dynamo_config):
                return self.compiled(*args)
        except TorchDynamoException as exc:
            self.fall_back(exc)
            return self.eager(*args)

    def fall_back(self, exc: Exception) -> None:
        """Run eagerly from now on, and say so in one line: the function and the compiler's own
        error (a backend's error arrives wrapped, as `inner_exception`)."""
        self.failed = True
        cause = getattr(exc, "inner_exception", None) or exc
        log.warning(
            "model.compile: compiling %s failed (%s: %s); it runs eagerly",
            self.eager.__qualname__,
            type(cause).__name__,
            first_line(cause),
        )


def compiled_if(enabled: bool, fn: Callable, **dynamo_config) -> Callable:
    """`fn` through torch.compile (`CompiledFunction`, compiling with these torch._dynamo.config
    settings) when `enabled`, else `fn` itself."""
    return CompiledFunction(fn, dynamo_config) if enabled else fn


def compile_seconds() -> float:
    """The seconds torch.compile has spent compiling in this process so far: TorchDynamo's frame
    compiles (tracing, and Inductor's code generation or cache look-ups) and AOTAutograd's
    backward compiles, which run at the first backward pass through a compiled graph."""
    return calculate_time_spent()["total_wall_time"]
