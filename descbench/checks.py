"""Checks of a composed config, run before anything is built or loaded (one ``error:`` line each).

Types and key names are checked by Hydra itself against the schemas (:mod:`descbench.schemas`) while
it composes; what is left is what a type cannot say: a required value not given, a name outside its
choices, an option added with ``+`` that the schema does not know, and DDP inside a multirun.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from descbench.errors import ConfigError
from descbench.head import check_aggregation
from descbench.metrics import check_entropy_scale
from descbench.rec.markings import VISUAL_PROMPTS, PromptSpec, parse_prompt_specs
from descbench.schemas import VISUAL_PROMPT_SCHEMAS

# what to tell a user who left a required (``???``) value out
REQUIRED_HINTS = {
    "describe.path": "the descriptor JSON file, e.g. describe.path=/data/descriptors_imagenet.json",
    "backbone.pretrained": "a checkpoint file or an open_clip pretrained tag, e.g. backbone.pretrained=/path/model.pt",
    "backbone.model": "an open_clip model name, e.g. backbone.model=ViT-B-16",
}


def check_config(cfg: DictConfig, multirun: bool = False) -> None:
    """Every check below, in order; raises :class:`ConfigError` with one line naming the key and the fix."""
    check_required(cfg)
    if "num_desc" in cfg:
        from descbench.descriptions.sources import check_num_desc

        check_num_desc(cfg.num_desc)
    task = cfg.get("task") or {}
    if "aggregation" in task:
        check_aggregation(task.aggregation)
    if "entropy_scale" in task:
        check_entropy_scale(task.entropy_scale)
    if cfg.get("visual_prompt") is not None:
        build_prompt_specs(cfg.visual_prompt)
    check_distributed(cfg, multirun)


def check_required(cfg: DictConfig) -> None:
    """A ``???`` value that the chosen configs need and the command line did not give."""
    missing = sorted(k for k in OmegaConf.missing_keys(cfg) if not k.startswith("hydra."))
    if missing:
        key = missing[0]
        hint = REQUIRED_HINTS.get(key, f"set {key}=...")
        others = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
        raise ConfigError(f"{key} is required by the chosen config: {hint}{others}")


def build_prompt_specs(visual_prompt: Any) -> list[PromptSpec]:
    """The ``visual_prompt`` config (``{circle: {thickness: 2}, crop: {}}``: an ensemble) as checked specs."""
    if isinstance(visual_prompt, (DictConfig, ListConfig)):
        visual_prompt = OmegaConf.to_container(visual_prompt, resolve=True)
    if not visual_prompt:
        raise ConfigError(
            "this task needs a visual prompt: visual_prompt=NAME, NAME one of "
            f"{', '.join(VISUAL_PROMPTS)} (a list is an ensemble: visual_prompt=[circle,crop])"
        )
    if not isinstance(visual_prompt, Mapping):
        return parse_prompt_specs(visual_prompt)
    for name, options in visual_prompt.items():
        schema = VISUAL_PROMPT_SCHEMAS.get(name)
        if schema is None:
            raise ConfigError(f"unknown visual prompt {name!r}: known ones are {', '.join(VISUAL_PROMPTS)}")
        known = [f.name for f in dataclasses.fields(schema)]
        unknown = sorted(set(options or {}) - set(known))
        if unknown:  # a key added with '+' bypasses the schema
            raise ConfigError(
                f"visual_prompt.{name} has no option {', '.join(unknown)}: its options are {', '.join(known) or 'none'}"
            )
    return parse_prompt_specs([{"name": key, **(options or {})} for key, options in visual_prompt.items()])


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
