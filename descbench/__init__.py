"""descbench: training-free zero-shot CLIP evaluation — classification by description and visual prompting.

The package has five parts; an arrow says which other parts a part may import (``tests/test_layers.py``
parses every import with ``ast`` and fails on one that breaks them; see ARCHITECTURE.md):

- **core** → nothing: errors, atomic files, backbones, the description head, metrics, statistics, result
  records, feature caches, description formatting and types, REC types/markings/geometry/scoring/engine,
  keypoint and bias computations. No Lightning, no Hydra.
- **data** → core: the data-set readers (``datasets/``: folders, torchvision sets, photos, REC readers, collages).
- **describe** → core: description sources and language models (``descriptions/``, ``llm/``).
- **world** → core, data: the shapes world, its known-answer model and its data sets (``world/``).
- **shell** → all: Hydra configs and schemas, checks, the task runner and LightningModules (``tasks/``),
  the entry points (``eval``, ``describe``, ``report``, ``dashboard``), tracking.
"""

#: module prefix -> part; the longest matching prefix wins (the test reads this table)
PARTS: dict[str, str] = {
    "descbench.errors": "core",
    "descbench.files": "core",
    "descbench.subsets": "core",
    "descbench.images": "core",
    "descbench.backbone": "core",
    "descbench.head": "core",
    "descbench.metrics": "core",
    "descbench.measures": "core",
    "descbench.stats": "core",
    "descbench.results": "core",
    "descbench.published": "core",
    "descbench.bias": "core",
    "descbench.keypoints": "core",
    "descbench.cache": "core",
    "descbench.rec": "core",
    "descbench.descriptions.format": "core",
    "descbench.descriptions.types": "core",
    "descbench.data": "core",
    "descbench.model_configs": "core",
    "descbench.datasets": "data",
    "descbench.descriptions": "describe",
    "descbench.llm": "describe",
    "descbench.world": "world",
    "descbench": "shell",
}
#: part -> the parts it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "data": {"core"},
    "describe": {"core"},
    "world": {"core", "data"},
    "shell": {"core", "data", "describe", "world"},
}
#: frameworks only the shell may import
SHELL_ONLY = ("lightning", "pytorch_lightning", "hydra", "omegaconf")


def part_of(module: str) -> str:
    """The part a ``descbench.*`` module belongs to (longest matching prefix of :data:`PARTS`)."""
    matches = [p for p in PARTS if module == p or module.startswith(p + ".")]
    return PARTS[max(matches, key=len)]
