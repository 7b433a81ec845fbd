"""Kind `memory`: the peak memory of one training step with `model.backward=hand` against
`model.backward=autograd`, both through the project (`benchmarks.child.run_step_memory`).

Each side is a fresh process that trains MEMORY_WARMUP_STEPS + 1 optimizer steps and measures the
last: at its batch start (no gradients held, garbage collected) Linux's peak resident set size
(VmHWM) is reset to the RSS then; at its batch end, after the optimizer step, the peak is read.
The value is that peak above the step's starting RSS: the memory the step's forward, backward
(autograd's saved tensors, or the hand pass's tape) and optimizer step add at their highest on top
of what stays between steps (weights, optimizer state, data). The children run with glibc's
`MALLOC_MMAP_THRESHOLD_` fixed at 64 KiB, so every tensor over it is its own mapping, resident
while alive and returned when freed: the RSS follows the live tensors rather than the allocator's
caching. Ratio = hand / autograd, lower is better.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.kinds.two_sided import TwoSided, ratio_target

# glibc: allocations of at least this many bytes are mmapped (and unmapped when freed); setting it
# also stops glibc from raising the threshold as big blocks are freed (its default behaviour).
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 * 1024)}


class HandStepMemory(TwoSided):
    name = "memory"
    legend = (
        "- memory cases: peak resident memory one training step adds (forward, backward, "
        "optimizer step) above the RSS it starts with, each mode in a fresh process after "
        "warm-up steps; ratio = hand / autograd (lower is better)"
    )
    measured, reference = "hand", "autograd"

    def jobs(self, cfg, overrides: list[str], work: Path) -> dict[str, dict]:
        return {
            side: {
                "program": "step_memory",
                "overrides": [*overrides, f"model.backward={side}"],
                "env": MALLOC_ENV,
            }
            for side in ("hand", "autograd")
        }

    def measure(self, cfg) -> tuple[str, Callable[[dict], float]]:
        return "step peak MB", lambda run: run["step_peak_mb"]

    def verdict(self, case, cfg, runs: dict, medians: dict, ratio: float) -> dict:
        notes = {
            side: f"from {max(r['step_start_rss_mb'] for r in side_runs):.0f} MB RSS"
            for side, side_runs in runs.items()
        }
        return {**ratio_target(ratio, case.target, at_least=False), "notes": notes}
