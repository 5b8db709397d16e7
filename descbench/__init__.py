"""descbench: training-free zero-shot CLIP evaluation — classification by description and visual prompting.

The package has five parts, one folder each; an arrow says which other parts a part may import
(``tests/test_layers.py`` parses every import with ``ast`` and fails on one that breaks them; see
ARCHITECTURE.md):

- **core** (``core/``) → nothing: errors, atomic files, backbones, the description head, metrics,
  statistics, result records, feature caches, description texts, and the marking engine
  (``core/marking/``: visual prompts, geometry, scoring, REC expressions and relations, keypoint and
  bias computations). No Lightning, no Hydra.
- **data** (``datasets/``) → core: the data-set readers.
- **describe** (``descriptions/``, with ``descriptions/llm/``) → core: description sources and language models.
- **world** (``world/``) → core, data: the shapes world, its known-answer model and its data sets.
- **shell** (everything else: ``shell/``, ``tasks/``, ``report/``, the entry points) → all: Hydra configs and
  checks, the task runner and the tasks, the report, tracking.
"""

#: folder (module prefix) -> part; the longest matching prefix wins (the test reads this table)
PARTS: dict[str, str] = {
    "descbench.core": "core",
    "descbench.datasets": "data",
    "descbench.descriptions": "describe",
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
