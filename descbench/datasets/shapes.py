"""The shapes world's classification set as an evaluation dataset (SPEC §8)."""

from __future__ import annotations

from descbench.datasets.base import EvalDataset


def load_shapes(num_per_class: int = 20, seed: int = 2024, attr_prob: float = 0.8, transform=None) -> EvalDataset:
    """Freshly generated, seeded images of the world's named classes, with their true descriptors."""
    from descbench.world.data import ShapesClassification, world_descriptors

    base = ShapesClassification(num_per_class=num_per_class, seed=seed, attr_prob=attr_prob)
    return EvalDataset(
        name="shapes",
        classes=list(base.classes),
        base=base,
        transform=transform,
        native={"words": world_descriptors(detailed=False), "sentences": world_descriptors(detailed=True)},
        sample_ids=lambda: [f"shapes:{seed}:{attr_prob}:{i}" for i in range(len(base))],
    )
