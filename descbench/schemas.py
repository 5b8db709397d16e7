"""Structured-config schemas: dataclasses in Hydra's ConfigStore that the YAML files of a group extend.

A misspelled key (``task.agregation=max``, ``+visual_prompt.circle.thicknes=3``) or a value of the
wrong type (``task.batch_size=abc``) then fails while Hydra composes the config, with Hydra's own
message naming the key, before anything is loaded. Values whose meaning is a choice among names
(``task.aggregation``, ``task.entropy_scale``) are checked right after composition by
:func:`descbench.checks.check_config`, which prints one ``error:`` line with the allowed values.

Each YAML file names its schema first in its defaults list (``- schema_classify``); a schema is
registered in the file's own group under a ``schema_`` name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

RED = [255, 0, 0]


# ------------------------------------------------------------------------------------------- task


@dataclass
class ClassifyTaskConfig:
    _target_: str = "descbench.tasks.classify.ClassifyTask"
    name: str = "classify"
    aggregation: str = "score_mean"
    entropy_scale: Any = "minmax"
    batch_size: int = 64
    num_workers: int = 2
    pin_memory: bool = True
    feature_batch_size: int = 4096
    channels_last: bool = False


@dataclass
class RecTaskConfig:
    _target_: str = "descbench.tasks.rec.RecTaskSpec"
    name: str = "rec"
    template: str = "a photo of {expression}"
    subtract: bool = False
    negatives: int = 10
    extra_backbones: list[Any] = field(default_factory=list)
    batch_size: int = 8
    num_workers: int = 2
    pin_memory: bool = True
    num_examples: int = 8
    lowercase: bool = False


@dataclass
class KeypointsTaskConfig:
    _target_: str = "descbench.tasks.keypoints.KeypointTaskSpec"
    name: str = "keypoints"
    mode: str = "localization"
    template: str = "a photo of the {part} of a {category}"
    radius: float = 0.25
    radius_unit: str = "box"
    alpha: float = 0.1
    image_processing: str = "squash"
    extra_backbones: list[Any] = field(default_factory=list)
    batch_size: int = 8
    num_workers: int = 2
    pin_memory: bool = True
    num_examples: int = 8


@dataclass
class MarkingBiasTaskConfig:
    _target_: str = "descbench.tasks.bias.BiasTaskSpec"
    name: str = "marking_bias"
    phrases: Any = None
    image_processing: str = "squash"
    control_seed: int = 0
    confidence: float = 0.95
    resamples: int = 10000
    batch_size: int = 8
    num_workers: int = 2
    pin_memory: bool = True
    num_examples: int = 2


# ------------------------------------------------------------------------------------ visual prompts


@dataclass
class OutlineOptions:
    """``circle`` and ``rectangle``: colour and thickness in pixels at the model's input resolution."""

    colour: list[int] = field(default_factory=lambda: list(RED))
    thickness: float = 2.0


@dataclass
class MarkedCropOptions:
    margin: float = 0.5
    colour: list[int] = field(default_factory=lambda: list(RED))
    thickness: float = 2.0


@dataclass
class BlurOutsideOptions:
    sigma: float = 3.0
    region: str = "box"


@dataclass
class GrayscaleOutsideOptions:
    region: str = "box"


@dataclass
class NoOptions:
    """``crop`` and ``none`` take no option."""


VISUAL_PROMPT_SCHEMAS: dict[str, type] = {
    "circle": OutlineOptions,
    "rectangle": OutlineOptions,
    "crop": NoOptions,
    "marked_crop": MarkedCropOptions,
    "blur_outside": BlurOutsideOptions,
    "grayscale_outside": GrayscaleOutsideOptions,
    "none": NoOptions,
}


# ------------------------------------------------------------------------------------ cache, trainer


@dataclass
class CacheConfig:
    features: bool = True
    text: bool = True
    verify: str = "stat"


@dataclass
class TrainerConfig:
    """The Lightning ``Trainer`` arguments descbench sets; any other one can be added with ``+trainer.x=...``."""

    _target_: str = "lightning.pytorch.Trainer"
    accelerator: str = "cpu"
    devices: Any = 1
    num_nodes: int = 1
    strategy: Any = "auto"
    precision: Any = "32-true"
    inference_mode: bool = True
    use_distributed_sampler: bool = False
    enable_checkpointing: bool = False
    enable_model_summary: bool = False
    enable_progress_bar: bool = True


SCHEMAS: dict[str, dict[str, type]] = {
    "task": {
        "classify": ClassifyTaskConfig,
        "rec": RecTaskConfig,
        "keypoints": KeypointsTaskConfig,
        "marking_bias": MarkingBiasTaskConfig,
    },
    "visual_prompt": VISUAL_PROMPT_SCHEMAS,
    "cache": {"default": CacheConfig},
    "trainer": {"default": TrainerConfig},
}
_registered = False


def register() -> None:
    """Register every schema once: ``<group>/schema_<name>``."""
    global _registered
    if _registered:
        return
    store = ConfigStore.instance()
    for group, schemas in SCHEMAS.items():
        for name, node in schemas.items():
            store.store(group=group, name=f"schema_{name}", node=node)
    _registered = True
