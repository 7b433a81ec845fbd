"""`make mutate`: mutation testing of the learning core, then every mutant that survived.

mutmut 3 (configured in pyproject.toml's [tool.mutmut]) copies src/ into mutants/ and writes every
mutant of each function there (a changed operator, constant, argument or condition), each switched
on by an environment variable. It runs the fast tests listed in that config once to learn which
tests reach which function, then runs each mutant in SCOPE against the tests that reach it: the
mutant is killed when one of them fails, and survives when they all pass.

This script starts mutmut on a fresh mutants/ folder (no result comes from an older source or test
suite), then reads mutmut's result files and prints, per package: mutants, killed (timeouts
included: a mutant that makes a test run past its time limit), equivalent (a survivor listed in
mutation/equivalent.toml, where each entry says why the mutant changes nothing), survived, and
not reached by any test; then every unlisted survivor as a diff. It exits with status 1 when
grads/ or optim/ has one (or a mutant no test reaches): there every non-equivalent mutant must
be killed. The models' loss and forward code is scored too, and its survivors printed.

    python mutation/mutate.py            # run, then report (what `make mutate` does)
    python mutation/mutate.py --report   # report the last run again
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = ROOT / "mutation" / "equivalent.toml"
GATED = ("grads", "optim")  # the packages where every non-equivalent mutant must be killed


def methods(module: str, cls: str, *names: str) -> list[str]:
    """mutmut's names for the mutants of `cls`'s methods `names` (all of them: `*`)."""
    return [f"handgrad.models.{module}.xǁ{cls}ǁ{name}__mutmut_*" for name in names]


# What `make mutate` mutates, by package: mutmut's mutant names (globs). A new grads/ module is in
# by its path; in models/ the loss and forward code (the parameters' shapes and inits included).
SCOPE = {
    "grads": ["handgrad.grads.*"],
    "optim": ["handgrad.optim.*"],
    "models": [
        *methods(
            "regression_module",
            "RegressionModule",
            "criterion",
            "criterion_grad",
            "loss",
            "batch_weight",
        ),
        *methods("linear", "LinearRegression", "__init__", "forward", "hand_loss_and_grads"),
        *methods("mlp", "MLP", "__init__", "forward", "trace", "hand_loss_and_grads"),
        *methods("rnn_cells", "ScratchRNN", "*"),
        *methods("rnn_cells", "FusedRNN", "*"),
        "handgrad.models.rnn_cells.x_torch_state__mutmut_*",
        "handgrad.models.char_rnn.x_mean_cross_entropy__mutmut_*",
        *methods(
            "char_rnn",
            "CharRNN",
            "forward",
            "initial_state",
            "loss",
            "hand_loss_and_grads",
            "reference_loss",
        ),
        *methods("gpt", "GPT", "forward", "loss", "hand_loss_and_grads", "reference_loss"),
        *methods("language_model", "CharLanguageModel", "batch_weight", "record_validation"),
        *methods("handgrad_module", "HandgradModule", "start_state", "gradient_pair"),
    ],
}


@dataclass(frozen=True)
class Mutant:
    key: str  # mutmut's name, e.g. handgrad.optim.hand_optimizers.xǁHandSGDǁupdate__mutmut_3
    package: str  # a SCOPE key
    function: str  # e.g. handgrad.optim.hand_optimizers.HandSGD.update
    status: str  # killed | timeout | survived | no tests | ...
    diff: str  # the mutated function's unified diff (survivors only)

    @property
    def changed(self) -> str:
        """The mutated line(s), stripped: the `+` lines of the diff, else the removed ones."""
        lines = [line for line in self.diff.splitlines() if line[:1] in "+-"]
        lines = [line for line in lines if not line.startswith(("+++", "---"))]
        added = [line[1:].strip() for line in lines if line.startswith("+")]
        return " / ".join(added) or "removed: " + " / ".join(line[1:].strip() for line in lines)


def function_name(key: str) -> str:
    """handgrad.m.xǁCǁf__mutmut_3 -> handgrad.m.C.f; handgrad.m.x_f__mutmut_3 -> handgrad.m.f."""
    module, _, mangled = key.partition("__mutmut_")[0].rpartition(".")
    if mangled.startswith("xǁ"):
        return f"{module}.{mangled[2:].replace('ǁ', '.', 1)}"
    return f"{module}.{mangled.removeprefix('x_')}"


def package_of(key: str) -> str | None:
    return next((p for p, globs in SCOPE.items() if any(fnmatchcase(key, g) for g in globs)), None)


def run_mutmut() -> int:
    """`mutmut run` on SCOPE from a fresh mutants/ folder; its exit status."""
    shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    mutmut = Path(sys.executable).with_name("mutmut")
    names = [glob for globs in SCOPE.values() for glob in globs]
    return subprocess.run([str(mutmut), "run", *names], cwd=ROOT, env=env).returncode


def read_results() -> list[Mutant]:
    """Every mutant in SCOPE with its status, from mutmut's files in mutants/ (a diff for each
    survivor)."""
    os.chdir(ROOT)  # mutmut's helpers read its config and mutants/ from the working directory
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code
    from mutmut.utils.file_utils import walk_mutatable_files

    mutants = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for key, exit_code in data.exit_code_by_key.items():
            package = package_of(key)
            if package is None:
                continue
            status = status_by_exit_code[exit_code]
            diff = get_diff_for_mutant(key, path=path) if status == "survived" else ""
            mutants.append(Mutant(key, package, function_name(key), status, diff))
    return mutants


def load_equivalent() -> list[dict]:
    """The kept list: one entry per equivalent mutant, {function, mutant (its changed line),
    reason}."""
    return tomllib.loads(EQUIVALENT.read_text(encoding="utf-8"))["equivalent"]


def is_listed(mutant: Mutant, equivalent: list[dict]) -> bool:
    return any(
        e["function"] == mutant.function and e["mutant"] == mutant.changed for e in equivalent
    )


COLUMNS = ("package", "mutants", "killed", "equivalent", "survived", "no test", "other", "score")


def package_row(package: str, mutants: list[Mutant], listed: set[Mutant]) -> list:
    """One table row; killed counts the timeouts, score = killed / (mutants - equivalent)."""
    count = Counter("equivalent" if m in listed else m.status for m in mutants)
    killed = count["killed"] + count["timeout"]
    counted = killed + count["equivalent"] + count["survived"] + count["no tests"]
    score = 100 * killed / max(len(mutants) - count["equivalent"], 1)
    other = len(mutants) - counted  # suspicious, segfault, not checked: see mutmut's output
    row = [len(mutants), killed, count["equivalent"], count["survived"], count["no tests"], other]
    return [package, *row, f"{score:.1f}%"]


def report(mutants: list[Mutant], equivalent: list[dict]) -> int:
    """Print the table, the unlisted survivors, the unreached mutants and the stale list entries;
    1 if a gated package has an unlisted survivor or an unreached mutant."""
    listed = {m for m in mutants if m.status == "survived" and is_listed(m, equivalent)}
    rows = [COLUMNS] + [
        package_row(package, [m for m in mutants if m.package == package], listed)
        for package in SCOPE
    ]
    print()
    for row in rows:
        print("  ".join(f"{cell:>{len(name)}}" for cell, name in zip(row, COLUMNS, strict=True)))
    timeouts = Counter(m.package for m in mutants if m.status == "timeout")
    if timeouts:
        print(f"killed by a time limit (counted as killed): {dict(timeouts)}")
    failing = [m for m in mutants if m not in listed and m.status in ("survived", "no tests")]
    for mutant in failing:
        what = "SURVIVED" if mutant.status == "survived" else "NO TEST REACHES"
        print(f"\n{what} {mutant.key}\n{mutant.diff}".rstrip())
    survived = {(m.function, m.changed) for m in listed}
    for entry in equivalent:
        if (entry["function"], entry["mutant"]) not in survived:
            print(f"\nnot a survivor now, remove it from {EQUIVALENT.name}: {entry['function']}: "
                  f"{entry['mutant']}")  # fmt: skip
    gated = [m for m in failing if m.package in GATED]
    packages = " and ".join(f"{p}/" for p in GATED)
    if gated:
        print(f"\n{len(gated)} mutant(s) in {packages} neither killed nor listed as equivalent")
        return 1
    print(f"\nevery mutant in {packages} is killed or listed as equivalent")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="report the last run again")
    args = parser.parse_args(argv)
    if not args.report:
        code = run_mutmut()
        if code != 0:
            print(f"mutmut run exited with {code}; see its output above")
            return code
    return report(read_results(), load_equivalent())


if __name__ == "__main__":
    sys.exit(main())
