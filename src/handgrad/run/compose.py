"""Command-line checks the scripts run before handing over to `@hydra.main`.

`compose_command_line` composes the config a command line asks for with Hydra's compose API, so
Hydra's own mistakes (an unknown key `foo=1`, an unknown option `model=nope`, a malformed
override) become one-line ConfigErrors that name the problem and the fix, instead of Hydra's
multi-line report. It imports neither torch nor Lightning: such a mistake fails in a second.
With `-m` every value of every sweep is composed once. Any other `-`/`--` flag (--help, --cfg,
...) is left to Hydra.
"""

from __future__ import annotations

import contextlib
import difflib
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf, open_dict

from handgrad.errors import ConfigError, first_line

MULTIRUN_FLAGS = ("-m", "--multirun")
GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
# Config groups a run can do without: `group=null`, like `~group`, turns them off.
OPTIONAL_GROUPS = ("scheduler", "logger", "experiment", "hparams_search", "callbacks")


def null_groups_deleted(config_dir: Path, argv: list[str]) -> list[str]:
    """`argv` with each `group=null` written `~group` ("no group", as Hydra spells it; it takes
    null for a group only inside a defaults list). Turning off a group a run needs (model, data,
    optimizer, device, Hydra's own), either way, is a ConfigError naming its options, and so is
    null among a sweep's options. Keys that are not groups (`ckpt_path=null`) keep their null.
    A command line with Hydra flags (--cfg job, ...) other than -m is left as it is."""
    if any(arg.startswith("-") and arg not in MULTIRUN_FLAGS for arg in argv):
        return argv
    if not any(arg.startswith("~") or "null" in arg for arg in argv):
        return argv  # nothing to rewrite or refuse: no need to read the config groups
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        return [_null_group_deleted(arg, loader) for arg in argv]


def _null_group_deleted(arg: str, loader) -> str:
    if arg in MULTIRUN_FLAGS or arg.startswith("+"):
        return arg
    override = _parse(arg)
    group = override.key_or_group
    options = loader.get_group_options(group) if override.package is None else []
    if not options:
        return arg
    if override.is_sweep_override():
        if None in getattr(override.value(), "list", ()):  # a choice sweep (not glob, range)
            raise ConfigError(
                f"{arg}: null cannot be one option of a sweep; sweep the {group} options "
                f"({', '.join(options)}) and run {group}=null on its own"
            )
        return arg
    if not (override.is_delete() or override.value() is None):
        return arg
    if group not in OPTIONAL_GROUPS:
        raise ConfigError(f"{arg}: a run needs one of the {group} options: {', '.join(options)}")
    return f"~{group}"


def a_or_an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def compose_command_line(
    config_dir: Path, config_name: str, argv: list[str]
) -> tuple[DictConfig, bool] | None:
    """The config `config_dir/config_name` composed with `argv` (Hydra's own keys included) and
    whether it is a multirun; for a multirun each job is composed (then dropped) and the config
    returned holds the overrides every job shares. None for a command line with other Hydra flags.
    Raises ConfigError for a Hydra mistake."""
    if any(arg.startswith("-") and arg not in MULTIRUN_FLAGS for arg in argv):
        return None
    overrides = [arg for arg in argv if arg not in MULTIRUN_FLAGS]
    parsed = [_parse(override) for override in overrides]
    fixed = [o for o, p in zip(overrides, parsed, strict=True) if not p.is_sweep_override()]
    cfg = _compose(config_dir, config_name, fixed)
    # A config may itself ask for a multirun (hparams_search=... sets hydra.mode).
    multirun = len(overrides) < len(argv) or str(cfg.hydra.get("mode")).endswith("MULTIRUN")
    if not multirun:  # a sweep override here is a mistake: composing it says so
        return (cfg if fixed == overrides else _compose(config_dir, config_name, overrides)), False
    for override in parsed:
        if override.is_sweep_override() and override.is_discrete_sweep():
            key = override.get_key_element()
            for value in override.sweep_string_iterator():
                _compose(config_dir, config_name, [*fixed, f"{key}={value}"])
    return cfg, True


def compose_run(config_dir: Path, overrides: list[str], output_dir: Path) -> DictConfig:
    """The config `scripts/train.py` builds from `overrides`, its run dir set to `output_dir`: for
    code that calls `handgrad.run.task.train` without `@hydra.main` (the tests, the benchmark)."""
    overrides = null_groups_deleted(config_dir, overrides)
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def _parse(override: str):
    try:
        return OverridesParser.create().parse_override(override)
    except HydraException as exc:  # OverrideParseException, or a bare one from the parser
        reason = next(
            (
                line
                for line in str(exc).splitlines()
                if line.strip() and not line.startswith(("Error parsing", "See "))
            ),
            "a syntax error",
        )
        raise ConfigError(
            f"cannot read the override {override!r} ({reason}); write key=value, "
            "quote values holding spaces, brackets, commas, = (a sweep job's dir does) or "
            f"non-ASCII characters: key='value', in a shell \"key='value'\"; see {GRAMMAR}"
        ) from exc


def _compose(config_dir: Path, config_name: str, overrides: list[str]) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except MissingConfigException as exc:
        raise _missing_option(exc) from exc
    except HydraException as exc:
        raise _composition_error(config_dir, config_name, overrides, exc) from exc


def _missing_option(exc: MissingConfigException) -> ConfigError:
    """`model=nope` -> 'model=nope is not a model; choose one of linear, mlp, rnn'."""
    group, _, option = (exc.missing_cfg_file or "").rpartition("/")
    if not group or not exc.options:
        return ConfigError(first_line(exc) or type(exc).__name__)
    return ConfigError(
        f"{group}={option} is not {a_or_an(group)} {group} option; "
        f"choose one of {', '.join(exc.options)}"
    )


def _composition_error(
    config_dir: Path, config_name: str, overrides: list[str], exc: Exception
) -> ConfigError:
    message = first_line(exc) or type(exc).__name__
    if message.startswith("Could not override '"):
        key = message.split("'")[1]
        override = next((o for o in overrides if o.lstrip("+~").startswith(f"{key}=")), key)
        hint = _key_hint(config_dir, config_name, overrides, key)
        return ConfigError(
            f"{override}: {key} is not a config key{hint}; check the spelling "
            f"(`--cfg job` prints every key), or add a new key with +{override.lstrip('+~')}"
        )
    if message.startswith("Ambiguous value for argument"):
        override = message.split("'", 2)[1]
        return ConfigError(
            f"{override}: a comma-separated value is a sweep; add -m to run one job per value, "
            "write key=[a,b] for a list, or quote it for a string: key='a,b'"
        )
    return ConfigError(message)


def _key_hint(config_dir: Path, config_name: str, overrides: list[str], key: str) -> str:
    """' (did you mean x?)' for a near miss, else the keys beside it: ' (optimizer has lr, ...)'.

    The config is composed with the command line's group picks (model=mlp has other keys)."""
    groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0]]
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=groups)
    except HydraException:
        return ""
    tree = OmegaConf.to_container(cfg, resolve=False)
    matches = difflib.get_close_matches(key, list(_dotted_keys(tree)), n=1, cutoff=0.8)
    if matches:
        return f" (did you mean {matches[0]}?)"
    parent, _, _ = key.rpartition(".")
    siblings = OmegaConf.select(cfg, parent) if parent else None
    if not OmegaConf.is_dict(siblings):
        return ""
    names = [name for name in siblings if not str(name).startswith("_")]
    return f" ({parent} has {', '.join(names)})"


def _dotted_keys(tree: dict, prefix: str = ""):
    for name, value in tree.items():
        yield f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _dotted_keys(value, f"{prefix}{name}.")


def output_dirs(cfg: DictConfig) -> list[str]:
    """The dirs a run of `cfg` writes under: paths.root, and hydra.run.dir when it resolves."""
    dirs = [OmegaConf.select(cfg, "paths.root")]
    # hydra.run.dir usually interpolates Hydra's runtime, which exists only inside @hydra.main.
    with contextlib.suppress(Exception):
        dirs.append(OmegaConf.select(cfg, "hydra.run.dir", throw_on_resolution_failure=True))
    return [d for d in dirs if d]
