"""The shapes world's evaluation sets (SPEC §8): named-class classification and REC canvases."""

from __future__ import annotations

from collections.abc import Sequence

from descbench.core.marking.expressions import RecDataset
from descbench.core.marking.points import KeypointDataset
from descbench.datasets.base import EvalDataset
from descbench.datasets.refer import from_records
from descbench.world.relational import ShapesRelations
from descbench.world.samples import ShapesClassification, ShapesREC, world_descriptors


def load_shapes_keypoints(
    design: str = "figures", num_instances: int = 96, seed: int = 11, image_size: int = 64
) -> KeypointDataset:
    """The shapes world's keypoint set (the offline default of ``task=keypoints``): ``figures`` (parts of
    objects, named by their look; left/right pairs) or ``corners`` (corners/tips/ends of one shape)."""
    from descbench.world.figures import ShapesKeypoints

    world = ShapesKeypoints(design=design, num_instances=num_instances, seed=seed, image_size=image_size)
    parts = list(dict.fromkeys(p for names in world.parts.values() for p in names))
    return KeypointDataset(
        name=f"shapes_keypoints({design},seed={seed})",
        instances=world.instances,
        parts=parts,
        image_loader=world.load_image,
        category_parts=world.parts,
        describe_image=lambda image_id: f"shapes-world canvas {image_id}",
    )


def load_shapes(num_per_class: int = 20, seed: int = 2024, attr_prob: float = 0.8, transform=None) -> EvalDataset:
    """Freshly generated, seeded images of the world's named classes, with their true descriptors."""
    base = ShapesClassification(num_per_class=num_per_class, seed=seed, attr_prob=attr_prob)
    return EvalDataset(
        name="shapes",
        classes=list(base.classes),
        base=base,
        transform=transform,
        native={"words": world_descriptors(detailed=False), "sentences": world_descriptors(detailed=True)},
        sample_ids=lambda: [f"shapes:{seed}:{attr_prob}:{i}" for i in range(len(base))],
    )


def load_shapes_rec(
    num_canvases: int = 60,
    seed: int = 7,
    num_objects: Sequence[int] = (2, 4),
    image_size: int = 64,
    aspect: str = "square",
) -> RecDataset:
    """The shapes world's REC set as a :class:`RecDataset`; ``aspect="mixed"``: 4:3 and 3:4 canvases with
    objects at the edges (counts in ``stats``)."""
    world = ShapesREC(
        num_canvases=num_canvases, seed=seed, num_objects=tuple(num_objects), image_size=image_size, aspect=aspect
    )
    name = f"shapes_rec(seed={seed})" if aspect == "square" else f"shapes_rec(seed={seed},aspect={aspect})"
    dataset = from_records(name, world.expressions, world.load_image)
    dataset.stats.update(world.stats)
    return dataset


def load_relations_rec(num_canvases: int = 120, seed: int = 11, image_size: int = 64) -> RecDataset:
    """The relations world (:mod:`descbench.world.relational`): expressions only a spatial relation resolves."""
    world = ShapesRelations(num_canvases=num_canvases, seed=seed, image_size=image_size)
    dataset = from_records(f"shapes_relations(seed={seed})", world.expressions, world.load_image)
    dataset.stats.update(world.stats)
    return dataset
