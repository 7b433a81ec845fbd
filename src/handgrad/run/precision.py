"""The `device=auto` precision: bfloat16 mixed precision where a recipe asks for it
(`bf16_where_native: true`) and the run is on a CPU with native bfloat16 arithmetic, else float32.

`conf/device/auto.yaml` sets `trainer.precision: ${auto_precision:${bf16_where_native}}`. The
resolver is registered when this module is imported, which importing any `handgrad.run` module
does (the package's `__init__`), so every entry point has it before the config is read.

Native bfloat16 means the CPU multiplies bf16 matrices in hardware: on x86 the `avx512_bf16` or
`amx_bf16` flags of /proc/cpuinfo (Intel Xeon since Cooper Lake, AMD Zen 4 and newer), on Arm
the `bf16` feature. Elsewhere torch emulates bf16 and it is slower than float32, so the answer
is float32. With a GPU present `device=auto` trains on the GPU, in float32 (bf16 on GPUs is
`device=gpu_bf16`, chosen by hand).
"""

from __future__ import annotations

import functools
from pathlib import Path

from omegaconf import OmegaConf

RESOLVER = "auto_precision"
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}  # x86 flags, Arm's feature name
CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_has_native_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU lists a native bfloat16 flag (x86 `flags`, Arm `Features`)."""
    if not cpuinfo.is_file():
        return False  # not Linux: no flags to read, float32 is the safe answer
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return bool(NATIVE_BF16_FLAGS & set(value.split()))
    return False


def auto_precision(bf16_where_native: bool) -> str:
    """`bf16-mixed` when `bf16_where_native` and the run trains on a CPU with native bfloat16,
    else `32-true`."""
    if bf16_where_native is not True:
        return "32-true"
    import torch  # here, not at the top: composing a config must not import torch

    on_gpu = torch.cuda.is_available() or torch.backends.mps.is_available()
    return "bf16-mixed" if not on_gpu and cpu_has_native_bf16() else "32-true"


if not OmegaConf.has_resolver(RESOLVER):
    OmegaConf.register_new_resolver(RESOLVER, auto_precision)
