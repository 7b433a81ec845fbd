"""`make mutate`'s own pieces (mutation/mutate.py): reading mutmut's names and diffs, and the kept
list of equivalent mutants (mutation/equivalent.toml). mutmut itself runs only in `make mutate`."""

from __future__ import annotations

import pytest

from mutation.mutate import SCOPE, Mutant, function_name, is_listed, load_equivalent, package_of

DIFF = """--- src/handgrad/grads/mlp.py
+++ src/handgrad/grads/mlp.py
@@ -7,7 +7,7 @@
         grads.append((delta.T @ layer_inputs[layer], delta.sum(0)))
-        if layer > 0:
+        if layer >= 0:
             grad_a = delta @ weights[layer]"""


@pytest.mark.parametrize(
    ("key", "function", "package"),
    [
        (
            "handgrad.grads.mlp.x_mlp_backward__mutmut_17",
            "handgrad.grads.mlp.mlp_backward",
            "grads",
        ),
        (
            "handgrad.optim.hand_optimizers.xǁHandSGDǁupdate__mutmut_3",
            "handgrad.optim.hand_optimizers.HandSGD.update",
            "optim",
        ),
        (
            "handgrad.models.mlp.xǁMLPǁ__init____mutmut_1",
            "handgrad.models.mlp.MLP.__init__",
            "models",
        ),
        ("handgrad.models.mlp.x__validate__mutmut_1", "handgrad.models.mlp._validate", None),
    ],
)
def test_mutant_names_give_the_function_and_the_package(key, function, package):
    assert function_name(key) == function
    assert package_of(key) == package


def test_a_survivor_is_listed_by_its_function_and_changed_line():
    mutant = Mutant("k", "grads", "handgrad.grads.mlp.mlp_backward", "survived", DIFF)
    assert mutant.changed == "if layer >= 0:"
    entry = {"function": mutant.function, "mutant": "if layer >= 0:", "reason": "r"}
    assert is_listed(mutant, [entry])
    assert not is_listed(mutant, [{**entry, "function": "handgrad.grads.mlp.other"}])


def test_the_kept_list_has_a_one_line_reason_for_each_distinct_in_scope_mutant():
    entries = load_equivalent()
    assert len({(e["function"], e["mutant"]) for e in entries}) == len(entries)
    for entry in entries:
        assert set(entry) == {"function", "mutant", "reason"}, entry
        assert entry["reason"].strip() and "\n" not in entry["reason"], entry
        assert entry["function"].split(".")[1] in SCOPE, entry
