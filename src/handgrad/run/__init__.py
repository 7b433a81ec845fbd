"""Run plumbing: everything that turns a command line into a safe, resumable training run.

compose (command line -> config), checks (config values), build (config -> parts), task (the
training run), results (metrics.json, HParams), console (what a run prints), progress (bar or
epoch lines), run_dir (a failed write, an unused run dir), resume, interrupts (Ctrl-C/SIGTERM),
divergence (non-finite loss), checkpoint_reading (safe loading), checkpoint_writing (atomic saves,
RNG state), atomic_write (a file replaced whole or not at all), precision (device=auto's
bf16-or-float32 choice), search (Optuna trials), sweep_summary (a sweep's table).

Importing any of them registers precision's `${auto_precision:...}` config resolver first, so
every entry point (the scripts, a sweep's worker process, the tests) can resolve the config.
"""

from handgrad.run import precision  # noqa: F401 (registers the resolver)
