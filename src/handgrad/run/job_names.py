"""A sweep job's dir is named by its own overrides: `<n>_model=mlp,optimizer=adam` for
`python scripts/train.py -m model=linear,mlp optimizer=sgd,adam trainer.max_epochs=5`, without the
overrides every job of the sweep shares (`trainer.max_epochs=5`: in `multirun.yaml` and in each
job's `.hydra/overrides.yaml`). TensorBoard names its runs by these dirs, so its legends and the
HParams trial names show what tells the jobs apart.

conf/train.yaml names a job's dir `${hydra.job.num}_${hydra.job.override_dirname}`; Hydra builds
`override_dirname` from the job's overrides less `hydra.job.config.override_dirname.exclude_keys`.
`NameJobsByOwnOverrides` (a Hydra callback) adds the keys of the command line's single-valued
overrides to that list when the sweep starts, as an override of the sweep's Hydra config that
every job's config is composed with. A command line that sweeps nothing (the jobs come from the
config, e.g. an Optuna search) keeps every override in the names.
"""

from __future__ import annotations

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, read_write

EXCLUDED = "hydra.job.config.override_dirname.exclude_keys"


class NameJobsByOwnOverrides(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        shared = shared_keys(list(config.hydra.overrides.task))
        if not shared:
            return
        excluded = [*config.hydra.job.config.override_dirname.exclude_keys, *shared]
        hydra_overrides = [o for o in config.hydra.overrides.hydra if not o.startswith(EXCLUDED)]
        with read_write(config.hydra.overrides):
            config.hydra.overrides.hydra = [*hydra_overrides, f"{EXCLUDED}=[{','.join(excluded)}]"]


def shared_keys(overrides: list[str]) -> list[str]:
    """The keys of the overrides every job shares (those that sweep no values), when some override
    sweeps; else none."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    if not any(override.is_sweep_override() for override in parsed):
        return []
    return [override.key_or_group for override in parsed if not override.is_sweep_override()]
