"""device=auto's precision: bfloat16 mixed where the recipe asks for it and the CPU has native
bf16 (model=rnn), float32 everywhere else (other models, the book experiments, device=cpu)."""

from __future__ import annotations

import pytest

from handgrad.run.precision import auto_precision, cpu_has_native_bf16
from helpers.runs import compose_config

X86_FLAGS = "fpu vme sse sse2 avx2 avx512f avx512bw avx512vl"


@pytest.mark.parametrize(
    ("lines", "native"),
    [
        ([f"flags\t\t: {X86_FLAGS}"], False),  # AVX-512 without BF16 (Skylake): emulated
        ([f"flags\t\t: {X86_FLAGS} avx512_bf16"], True),  # Cooper Lake, Zen 4
        ([f"flags\t\t: {X86_FLAGS} amx_bf16 amx_tile"], True),  # Sapphire Rapids
        (["Features\t: fp asimd sve bf16 i8mm"], True),  # Arm with BF16 (Graviton 3)
        (["Features\t: fp asimd evtstrm aes"], False),
        (["processor\t: 0"], False),  # no flags line at all
    ],
)
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, lines, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\n" + "\n".join(lines) + "\n")
    assert cpu_has_native_bf16(cpuinfo) is native


def test_no_cpuinfo_means_float32(tmp_path):
    assert cpu_has_native_bf16(tmp_path / "missing") is False
    assert auto_precision(False) == "32-true"


@pytest.mark.parametrize(
    ("overrides", "bf16_here"),
    [
        (["model=rnn"], True),
        (["model=rnn", "bf16_where_native=false"], False),
        (["model=rnn", "device=cpu"], False),
        (["model=rnn", "device=cpu_bf16"], None),  # bf16-mixed on any CPU: chosen by hand
        (["experiment=seed003_char_rnn"], False),
        (["experiment=d2l_rnn"], False),
        (["experiment=d2l_rnn_scratch"], False),
        (["model=mlp"], False),
        (["model=linear"], False),
    ],
)
def test_which_runs_train_in_bf16(tmp_path, overrides, bf16_here):
    """On this machine: bf16-mixed for model=rnn exactly when the CPU lists native bf16."""
    precision = compose_config(overrides, tmp_path).trainer.precision
    if bf16_here is None:
        assert precision == "bf16-mixed"
    else:
        native = cpu_has_native_bf16()
        assert precision == ("bf16-mixed" if bf16_here and native else "32-true")
