"""Structured-config schemas, derived from the signatures of what the configs build, in Hydra's ConfigStore.

Nothing here lists an option: each schema is computed from a registry whose entries sit on the code they
describe — the tasks (:mod:`descbench.tasks.definition`), the description sources
(:mod:`descbench.descriptions.registry`), the language-model backends (:mod:`.llm.backends`), the visual
prompts (:mod:`descbench.core.marking.visual_prompts`) — with hydra-zen's ``builds(...,
populate_full_signature=True)``. A misspelled key, a value of the wrong type or a choice outside its ``Enum``
(``task.aggregation=nope``: the valid values are listed) therefore fails while Hydra composes, naming the key.

Registered names: ``<group>/<name>`` for every entry, except where ``conf/<group>/<name>.yaml`` exists: that
file is a preset that differs from the defaults (a task's data and model, the ``llm`` source's backend) and
extends the schema registered as ``<group>/schema_<name>``. The primary config extends ``schema_eval`` (its own
keys, typed).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, make_dataclass
from typing import Annotated, Any

from hydra.core.config_store import ConfigStore
from hydra_zen import builds
from omegaconf import MISSING

from descbench.core.choices import Count
from descbench.core.feature_cache import Verify
from descbench.core.marking.visual_prompts import NOT_OPTIONS, VISUAL_PROMPTS
from descbench.shell.config import CONFIG_DIR

#: the options of every description source that a sweep sets at the top level
SWEEP_OPTIONS = {"num_desc": "${num_desc}", "seed": "${seed}"}
#: what a description source receives from the data set, never from its config
DATA_ARGUMENTS = ("classes", "native", "class_ids")


@dataclass
class DatasetConfig:
    """A ``dataset`` group entry: a name, the reader (``builder``, checked against its signature) and a subset."""

    name: str = MISSING
    builder: Any = MISSING
    limit: Annotated[int, Count] | None = None  # a seeded subset of N samples spread over the classes (null: all)
    limit_seed: int = 0


@dataclass
class CacheConfig:
    """Image features per (backbone, weights, dataset, split, transform, samples, precision); text per string."""

    features: bool = True
    text: bool = True
    verify: Verify = Verify.stat


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


@dataclass
class EvalConfig:
    """``python -m descbench.eval``'s own keys; the groups are filled by the defaults list."""

    dataset: DatasetConfig = MISSING
    backbone: Any = MISSING
    task: Any = MISSING
    describe: Any = None
    visual_prompt: Any = None
    trainer: Any = MISSING
    logger: Any = None
    paths: Any = MISSING
    cache: CacheConfig = field(default_factory=CacheConfig)
    seed: int = 0
    num_desc: int = 4  # bullets per in-context example / descriptors per class (the describe config reads it)
    task_name: str = "eval"


def signature_schema(target: Any, *, exclude: tuple[str, ...] = (), **defaults: Any) -> type:
    """The structured config of what ``target`` builds: its full signature (types, defaults) as fields,
    ``exclude`` left out (what the caller passes itself), ``defaults`` replacing the signature's."""
    return builds(target, populate_full_signature=True, zen_exclude=exclude, **defaults)


def options_schema(fn: Any, name: str) -> type:
    """A dataclass of the visual prompt ``name``'s options: its signature but the image, box and input size
    (nothing is built from it: the task reads the options and draws with the registered function)."""
    built = signature_schema(fn, exclude=NOT_OPTIONS)
    return make_dataclass(
        f"{name}_options",
        [(f.name, f.type, _copy_default(f)) for f in dataclasses.fields(built) if not f.name.startswith("_")],
    )


def _copy_default(f: dataclasses.Field) -> dataclasses.Field:
    if f.default_factory is not dataclasses.MISSING:
        return field(default_factory=f.default_factory)
    return field(default=f.default)


def schemas() -> dict[str, dict[str, Any]]:
    """``{group: {name: node}}`` of every registered entry (see the module doc for the names)."""
    from descbench.descriptions.llm.backends import BACKENDS
    from descbench.descriptions.registry import load_sources
    from descbench.tasks.definition import load_tasks

    groups: dict[str, dict[str, Any]] = {"task": {}, "describe": {}, "describe/backend": {}, "visual_prompt": {}}
    for name, definition in load_tasks().items():
        groups["task"][name] = signature_schema(definition.spec_class())
    for name, source in load_sources().items():
        extra = dict(SWEEP_OPTIONS)
        if getattr(source, "default_base", None):
            base = load_sources()[source.default_base]
            # an open node (not a typed one): a preset may put another source there, with its own options
            extra["base"] = {"_target_": f"{base.__module__}.{base.__qualname__}", "_partial_": True}
        exclude = DATA_ARGUMENTS
        if source.class_list:  # describe.classes: a class-list file instead of the data set's classes
            exclude, extra["classes"] = tuple(a for a in DATA_ARGUMENTS if a != "classes"), None
        groups["describe"][name] = signature_schema(source, exclude=exclude, **extra)
    for name, backend in BACKENDS.items():
        groups["describe/backend"][name] = signature_schema(backend)
    for name, fn in VISUAL_PROMPTS.items():
        groups["visual_prompt"][name] = {name: options_schema(fn, name)}
    return groups


_registered = False


def register() -> None:
    """Put every schema into Hydra's ConfigStore (once)."""
    global _registered
    if _registered:
        return
    store = ConfigStore.instance()
    for group, nodes in schemas().items():
        for name, node in nodes.items():
            preset = (CONFIG_DIR / group / f"{name}.yaml").is_file()
            store.store(group=group, name=f"schema_{name}" if preset else name, node=node)
    store.store(group="cache", name="default", node=CacheConfig)
    store.store(group="trainer", name="schema_default", node=TrainerConfig)
    store.store(name="schema_eval", node=EvalConfig)
    _registered = True
