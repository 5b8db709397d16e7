"""Structured-config schemas: dataclasses in Hydra's ConfigStore that the YAML files of a group extend.

A misspelled key (``task.agregation=max``, ``+visual_prompt.circle.thicknes=3``) or a value of the
wrong type (``task.batch_size=abc``) then fails while Hydra composes the config, with Hydra's own
message naming the key, before anything is loaded. Values whose meaning is a choice among names
(``task.aggregation``, ``task.entropy_scale``) are checked right after composition by
:func:`descbench.shell.checks.check_config`, which prints one ``error:`` line with the allowed values.

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
    _target_: str = "descbench.tasks.classify.module.ClassifyTask"
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
    _target_: str = "descbench.tasks.rec.module.RecTaskSpec"
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
    image_processing: str = "squash"
    pad_fill: list[int] = field(default_factory=lambda: [123, 117, 104])
    relations: str = "none"


@dataclass
class KeypointsTaskConfig:
    _target_: str = "descbench.tasks.keypoints.module.KeypointTaskSpec"
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
    _target_: str = "descbench.tasks.marking_bias.module.BiasTaskSpec"
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


# ------------------------------------------------------------------------------------ describe


@dataclass
class DescribeConfig:
    """The options every description source takes (so that a sweep composes whatever the source)."""

    _target_: str = "descbench.descriptions.sources.world"
    num_desc: Any = "${num_desc}"  # checked (one line) by descriptions.sources.check_num_desc
    detailed: bool = False
    seed: Any = "${seed}"


@dataclass
class WorldDescribeConfig(DescribeConfig):
    allow_fewer: bool = False
    rule: str = "corrected"
    template: str = "{classname}, {descriptor}"


@dataclass
class ClassnameDescribeConfig(DescribeConfig):
    _target_: str = "descbench.descriptions.sources.classname"
    template: str = "{classname}"


@dataclass
class TemplatesDescribeConfig(DescribeConfig):
    _target_: str = "descbench.descriptions.sources.templates"
    ensemble: str = "openai"


@dataclass
class FileDescribeConfig(DescribeConfig):
    _target_: str = "descbench.descriptions.sources.file"
    path: Any = None
    key: Any = None
    sentences: bool = False
    truncate: bool = False
    allow_fewer: bool = False
    empty: str = "classname"
    names: str = "dataset"
    detailed_prefix: str = "none"
    rule: str = "corrected"
    template: str = "{classname}, {descriptor}"


@dataclass
class ControlDescribeConfig(DescribeConfig):
    """``swapped`` and ``shuffled``: a base source (a partial) and repetitions."""

    reps: int = 1
    base: Any = None


@dataclass
class WaffleDescribeConfig(ControlDescribeConfig):
    _target_: str = "descbench.descriptions.controls.waffle"
    kind: str = "both"
    shared: bool = True
    count: Any = None
    rule: str = "corrected"
    template: str = "{classname}, {descriptor}"


@dataclass
class LlmDescribeConfig(DescribeConfig):
    _target_: str = "descbench.descriptions.llm.source.llm"
    backend: Any = None
    bank: str = "project"
    instruction: Any = "none"
    num_examples: Any = None
    detailed_prefix: str = "none"
    on_empty: str = "error"
    exclude_wrong_count: str = "off"
    offline: bool = False
    concurrency: int = 4
    progress: bool = True
    cache_dir: str = "${paths.cache_dir}/llm"
    rule: str = "corrected"
    template: str = "{classname}, {descriptor}"
    export: Any = None
    dry_run: bool = False
    classes: Any = None


@dataclass
class LocalBackendConfig:
    _target_: str = "descbench.descriptions.llm.backends.local_model.LocalBackend"
    model_path: Any = None
    gguf_file: Any = None
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    chat: bool = False
    stop: list[str] = field(default_factory=lambda: ["\nQ:", "\n\n"])
    stop_on_repeat: bool = True


@dataclass
class OpenAIBackendConfig:
    _target_: str = "descbench.descriptions.llm.backends.openai_api.OpenAIBackend"
    model: str = "gpt-3.5-turbo-instruct"
    api: str = "completions"
    base_url: Any = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    top_p: Any = None
    max_tokens: int = 256
    seed: int = 0
    stop: list[str] = field(default_factory=lambda: ["\nQ:"])
    timeout: float = 60.0
    max_retries: int = 5
    retry_delay_scale: float = 1.0


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
    "describe": {
        "world": WorldDescribeConfig,
        "classname": ClassnameDescribeConfig,
        "templates": TemplatesDescribeConfig,
        "file": FileDescribeConfig,
        "swapped": ControlDescribeConfig,
        "shuffled": ControlDescribeConfig,
        "waffle": WaffleDescribeConfig,
        "llm": LlmDescribeConfig,
    },
    "describe/backend": {"local": LocalBackendConfig, "openai": OpenAIBackendConfig},
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
