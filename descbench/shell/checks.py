"""Checks of a composed config, run before anything is built or loaded (one ``error:`` line each).

Key names, types and choices are checked by Hydra itself against the schemas (:mod:`descbench.shell.schemas`,
derived from signatures) while it composes. What is left is what composition cannot know: a required value
not given; an option added with ``+`` to a node that has no schema, against the signature of what the node
builds; the ranges those signatures (and the primary schema) declare in their annotations; the visual prompt;
Lightning Trainer values (and that the accelerator is there); and DDP inside a multirun.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import typing
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from descbench.core.choices import check_arguments, check_value
from descbench.core.errors import ConfigError
from descbench.shell.schemas import EvalConfig

# what to tell a user who left a required (``???``) value out
REQUIRED_HINTS = {
    "describe.path": "the descriptor JSON file, e.g. describe.path=/data/descriptors_imagenet.json",
    "backbone.pretrained": "a checkpoint file or an open_clip pretrained tag, e.g. backbone.pretrained=/path/model.pt",
    "backbone.model": "an open_clip model name, e.g. backbone.model=ViT-B-16",
    "dataset.builder.proposals": (
        "the published zero-shot REC numbers were measured on detector proposals: "
        "dataset.builder.proposals=/path/refcoco_dets_dict.json (ReCLIP's detection file); "
        "dataset.builder.proposals=gt scores the gold boxes on purpose (an easier task, not comparable)"
    ),
}


def check_config(cfg: DictConfig, multirun: bool = False) -> None:
    """Every check below, in order; raises :class:`ConfigError` with one line naming the key and the fix."""
    check_required(cfg)
    check_top_level(cfg)
    check_finite(cfg)
    check_options(cfg)
    check_declared(cfg, EvalConfig)
    if "num_desc" in cfg:
        from descbench.descriptions.sources import check_num_desc

        check_num_desc(cfg.num_desc)
    if cfg.get("visual_prompt") is not None:
        from descbench.tasks.marking import visual_prompts_of

        visual_prompts_of(cfg.visual_prompt, "this")
    check_trainer(cfg.get("trainer"))
    check_distributed(cfg, multirun)


def check_options(cfg: DictConfig) -> None:
    """Every option of a node that is built (``_target_``) must be a parameter of what it builds, with a value
    its annotation allows (a range, a choice: checked here, before anything is built).

    A key added with ``+`` to a node without a schema (``+dataset.builder.nmu=3``) is otherwise passed on and
    ends in Hydra's "Error in call to target" wrapper, or, for a callable taking ``**kwargs``, is silently
    ignored.
    """
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)
    tree.pop("logger", None)  # the logger's options are the logger library's (W&B takes **kwargs)
    for path, node in _built_nodes(tree, ""):
        target = node["_target_"]
        try:
            from hydra.utils import get_object

            built = get_object(target)
            signature = inspect.signature(built)
        except Exception as err:  # an import error, or a target that is not callable
            raise ConfigError(f"{path}._target_={target!r} cannot be imported ({err})") from None
        params = signature.parameters
        given = {k: v for k, v in node.items() if not k.startswith("_") and k in params}
        try:
            check_arguments(built if not inspect.isclass(built) else built.__init__, given, path)
        except NameError:  # an annotation that names what its module imports lazily: types are Hydra's job
            pass
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            continue
        unknown = sorted(k for k in node if not k.startswith("_") and k not in params)
        if unknown:
            known = sorted(k for k in node if not k.startswith("_") and k in params)
            raise ConfigError(
                f"{path} has no option {', '.join(unknown)} ({target}): its options are {', '.join(known) or 'none'}"
                " (check the spelling)"
            )


def _built_nodes(node: Any, path: str):
    """``(path, node)`` of every mapping with a ``_target_`` in a plain config tree, depth first."""
    if isinstance(node, Mapping):
        if "_target_" in node:
            yield path or "<config>", node
        for key, value in node.items():
            yield from _built_nodes(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if not isinstance(value, (Mapping, list)) and path.endswith("extra_backbones"):
                raise ConfigError(f"{path}[{i}]={value!r} is not a backbone config (a mapping with _target_)")
            yield from _built_nodes(value, f"{path}[{i}]")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_declared(cfg: Any, schema: type, prefix: str = "") -> None:
    """The ranges the primary schema's annotations declare (``dataset.limit`` >= 1, ...), one line naming the key."""
    hints = typing.get_type_hints(schema, include_extras=True)
    for f in dataclasses.fields(schema):
        value = cfg.get(f.name) if isinstance(cfg, (DictConfig, Mapping)) else None
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]) and value is not None:
            check_declared(value, hints[f.name], key + ".")
        elif value is not None and not isinstance(value, (DictConfig, ListConfig)):
            check_value(key, value, hints[f.name])


def _choices(literal: Any) -> list[Any]:
    """The values of a (possibly nested) ``Literal``/``Union`` type."""
    args = typing.get_args(literal)
    return [v for a in args for v in (_choices(a) if typing.get_args(a) else [a])]


def check_trainer(trainer: Any) -> None:
    """The Lightning Trainer options that would fail inside ``Trainer(...)``: accelerator (and that it is there),
    devices, strategy, precision."""
    if not trainer:
        return
    from lightning.fabric.connector import _PRECISION_INPUT
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    accelerator = trainer.get("accelerator", "auto")
    names = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    if isinstance(accelerator, str):
        if accelerator not in names:
            raise ConfigError(
                f"trainer.accelerator={accelerator!r} is not an accelerator: use one of {', '.join(names)}"
            )
        wanted = ["cuda", "mps"] if accelerator == "gpu" else [] if accelerator == "auto" else [accelerator]
        if wanted and not any(AcceleratorRegistry[w]["accelerator"].is_available() for w in wanted):
            raise ConfigError(
                f"trainer.accelerator={accelerator} but this machine has no such device: use trainer=cpu "
                "(or trainer.accelerator=cpu)"
            )
    devices = trainer.get("devices", "auto")
    if not _devices_ok(devices):
        raise ConfigError(
            f"trainer.devices={devices!r} is not a device count: use a number >= 1, -1 (all), auto, "
            "or a list of device indices such as [0,1]"
        )
    strategy = trainer.get("strategy", "auto")
    strategies = ["auto", *StrategyRegistry.available_strategies()]
    if isinstance(strategy, str) and strategy not in strategies:
        raise ConfigError(
            f"trainer.strategy={strategy!r} is not a strategy: use auto, ddp, ... ({len(strategies)} known)"
        )
    precision = trainer.get("precision", "32-true")
    allowed = _choices(_PRECISION_INPUT)
    if precision not in allowed:
        shown = [p for p in allowed if isinstance(p, str) and "-" in p and not p.startswith("transformer")]
        raise ConfigError(f"trainer.precision={precision!r} is not a precision: use one of {', '.join(shown)}")


def _devices_ok(devices: Any) -> bool:
    if isinstance(devices, bool):
        return False
    if isinstance(devices, int):
        return devices >= 1 or devices == -1
    if isinstance(devices, (list, tuple, ListConfig)):
        return len(devices) > 0 and all(_is_int(d) and d >= 0 for d in devices)
    if isinstance(devices, str):
        text = devices.strip()
        return text in ("auto", "-1") or (bool(re.fullmatch(r"\d+(\s*,\s*\d+)*,?", text)) and text != "0")
    return False


def check_required(cfg: DictConfig) -> None:
    """A ``???`` value that the chosen configs need and the command line did not give."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra."))
    if missing:
        key = missing[0]
        hint = REQUIRED_HINTS.get(key, f"set {key}=...")
        others = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise ConfigError(f"{key} is required by the chosen config: {hint}{others}")


def multi_device(cfg: DictConfig) -> bool:
    """Whether the trainer config asks for more than one process (devices, nodes, or 'auto' on GPUs)."""
    trainer = cfg.get("trainer") or {}
    devices = trainer.get("devices", 1)
    if devices == "auto":
        return str(trainer.get("accelerator", "cpu")) != "cpu"  # 'auto' takes every visible GPU
    return devices not in (1, "1", [0]) or int(trainer.get("num_nodes", 1)) > 1


def check_distributed(cfg: DictConfig, multirun: bool) -> None:
    """Refuse more than one device inside a Hydra multirun: Lightning re-launches the command line per rank."""
    if multirun and multi_device(cfg):
        trainer = cfg.trainer
        raise ConfigError(
            f"trainer.devices={trainer.get('devices')} (num_nodes={trainer.get('num_nodes', 1)}) cannot run inside a "
            "Hydra multirun (-m): Lightning would re-launch the whole sweep in every rank; run each sweep point as its "
            "own command, or sweep with the submitit launcher, hydra/launcher=slurm (one multi-device job per point)"
        )


def check_top_level(cfg: DictConfig) -> None:
    """A top-level key the primary schema does not declare (``+num_descs=3``, which Hydra's ``+`` adds past the
    schema): nothing would read it."""
    known = {f.name for f in dataclasses.fields(EvalConfig)} | {"hydra"}
    unknown = sorted(str(k) for k in cfg if str(k) not in known)
    if unknown:
        raise ConfigError(
            f"{unknown[0]} is not an option (added with +{unknown[0]}=...?): nothing reads a top-level "
            f"{unknown[0]!r}; the top-level options are {', '.join(sorted(known - {'hydra'}))} (check the spelling)"
        )


def check_finite(cfg: DictConfig) -> None:
    """No option is NaN or infinite (``task.alpha=inf`` would make every point correct, and ``Infinity`` is
    not JSON)."""
    tree = OmegaConf.to_container(cfg, resolve=False)
    tree.pop("hydra", None)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, float) and not math.isfinite(node):
            raise ConfigError(f"{path}={node} is not a finite number: give a number")

    walk(tree, "")
