"""Keypoints (core): instances with named points, the marking geometry of a point, PCK, chance and naming.

Shared by the readers (``descbench.datasets.keypoint_sets``), the shapes world (``descbench.world.figures``)
and the ``keypoints`` task; imports nothing above the core.

**Localisation.** For each visible part of an instance, the candidates are all visible annotated
keypoints of that instance (the gold one included); each candidate point is marked in turn and the
best-scoring one is chosen (:func:`localization_queries`). The choice is correct when its distance to
the gold point is at most ``alpha * max(box w, box h)`` of the instance box (PCK@alpha, default
``alpha = 0.1``; :func:`pck_threshold`). The chance level of a query is the share of its candidates that
lie within that threshold of the gold point (a random pick's PCK); ``chance_pck`` is its mean.

**Naming.** Each visible keypoint is marked and classified among the part names of its category
(:func:`naming_queries`); accuracy overall and per part, a confusion table, and a left/right-merged
accuracy where predicting the mirrored part (``left eye`` for ``right eye``) counts as correct.

Result keys (:func:`summarize_localization`, :func:`summarize_naming`):

- localisation: ``pck``, ``pck.<part>``, ``chance_pck``, ``chance_pck.<part>``, ``num_keypoints`` (the
  queries: one per visible keypoint), ``data.single_candidate`` (queries with one candidate), and the
  settings ``pck_alpha``, ``pck_reference`` (``"max(box w, h)"``);
- naming: ``acc``, ``acc.<part>``, ``acc_lr_merged``, ``chance_acc``, ``chance_acc_lr_merged``,
  ``num_keypoints``; the confusion table comes from :func:`confusion_table`.

Part names become one segment of a result key: :class:`KeypointDataset` refuses a name with a ``.``, a reserved
result-key word (``ci_low``, ``std``, ...; :func:`descbench.core.measures.name_segment_problem`) and a name given twice.

Points are ``(x, y)`` in image pixels, boxes ``[x, y, w, h]``; a part that is not visible (or not
annotated) is ``None``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from PIL import Image

from descbench.core.choices import Choice
from descbench.core.errors import ConfigError, DatasetError
from descbench.core.images import ImagesById
from descbench.core.marking.geometry import GeometryMode
from descbench.core.measures import name_segment_problem
from descbench.core.subsets import keep_first

Point = tuple[float, float]
Box = list[float]

DEFAULT_ALPHA = 0.1
PCK_REFERENCE = "max(box w, h)"


class RadiusUnit(Choice):
    """The unit of a keypoint circle's radius: pixels as the model sees them, or a fraction of max(box w, h)."""

    input = "input"
    box = "box"


class KeypointMode(Choice):
    """``localization``: for each part, pick the marked candidate point (PCK); ``naming``: name each marked point."""

    localization = "localization"
    naming = "naming"


# ---------------------------------------------------------------------------- checks


def _finite_numbers(value: object, count: int) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        return None
    numbers = [float(v) for v in value]
    return numbers if all(math.isfinite(v) for v in numbers) else None


def check_point(value: object, where: str) -> Point | None:
    """``value`` as an ``(x, y)`` point: two finite numbers, or None (not visible) for ``None``.

    ``where`` names the file/line/key for the error message.
    """
    if value is None:
        return None
    numbers = _finite_numbers(value, 2)
    if numbers is None:
        raise DatasetError(f"{where}: keypoint {value!r} is not two finite numbers [x, y] (or null when not visible)")
    return numbers[0], numbers[1]


def check_box(value: object, where: str) -> Box:
    """``value`` as a box ``[x, y, w, h]``: four finite numbers with positive width and height."""
    numbers = _finite_numbers(value, 4)
    if numbers is None:
        raise DatasetError(f"{where}: box {value!r} is not four finite numbers [x, y, w, h]")
    if numbers[2] <= 0 or numbers[3] <= 0:
        raise DatasetError(f"{where}: box {value!r} has no area (width and height must be > 0)")
    return numbers


# ---------------------------------------------------------------------------- types


@dataclass(frozen=True)
class KeypointInstance:
    """One annotated object: its image, category, box (xywh) and keypoints ``{part: (x, y) or None}``."""

    image_id: str
    category: str
    box: Box
    keypoints: Mapping[str, Point | None]
    split: str = "test"
    instance_id: str | None = None

    def visible_parts(self, order: Sequence[str] | None = None) -> list[str]:
        """The parts with a point, in ``order`` (default: the order of ``keypoints``)."""
        names = list(order) if order is not None else list(self.keypoints)
        return [p for p in names if self.keypoints.get(p) is not None]


def mirror_pairs(parts: Sequence[str], declared: Mapping[str, str] | None = None) -> dict[str, str]:
    """Left/right partners among ``parts``: ``declared`` pairs (both directions), else by the rule
    "replace the word ``left`` by ``right`` (and back)" when the result is also a part name
    (``left eye`` <-> ``right eye``, ``left_wing`` <-> ``right_wing``)."""
    names = set(parts)
    out: dict[str, str] = {}
    for a, b in (declared or {}).items():
        for name in (a, b):
            if name not in names:
                raise DatasetError(f"mirror pair {a!r} <-> {b!r}: {name!r} is not a part name ({', '.join(parts)})")
        out[a], out[b] = b, a
    swap = {"left": "right", "right": "left", "Left": "Right", "Right": "Left"}
    for name in parts:
        if name in out:
            continue
        other = re.sub(r"(?<![A-Za-z])(left|right|Left|Right)(?![a-z])", lambda m: swap[m.group(1)], name)
        if other != name and other in names:
            out[name] = other
    return out


class KeypointDataset(ImagesById):
    """A keypoint evaluation set: ``name``, ``instances``, ordered ``parts``, ``load_image(image_id)``.

    ``category_parts`` gives a category its own part list (SPair-71k, the shapes world); otherwise every
    category uses ``parts``. ``mirror`` maps each left/right part to its partner (derived by
    :func:`mirror_pairs` when not given). ``stats`` counts what the reader skipped.
    """

    def __init__(
        self,
        name: str,
        instances: list[KeypointInstance],
        parts: Sequence[str],
        image_loader: Callable[[str], Image.Image],
        describe_image: Callable[[str], str] | None = None,
        category_parts: Mapping[str, Sequence[str]] | None = None,
        mirror: Mapping[str, str] | None = None,
        stats: Mapping[str, int] | None = None,
    ) -> None:
        self.name = name
        self.instances = instances
        self.parts = list(parts)
        self.category_parts = {k: list(v) for k, v in (category_parts or {}).items()}
        every = list(dict.fromkeys(self.parts + [p for v in self.category_parts.values() for p in v]))
        for part in every:
            problem = name_segment_problem(part)
            if problem:
                raise DatasetError(
                    f"data set {name}: part name {part!r} {problem}: part names are result key segments "
                    "(pck.<part>); rename the part"
                )
        for owner, names in [("the parts", self.parts), *self.category_parts.items()]:
            twice = sorted({p for p in names if names.count(p) > 1})
            if twice:
                raise DatasetError(
                    f"data set {name}: {owner if owner == 'the parts' else f'category {owner!r}'} name the part "
                    f"{twice[0]!r} twice: each part once (a repeated name adds queries and changes the chance level)"
                )
        self.mirror = dict(mirror) if mirror is not None else mirror_pairs(every)
        self.stats = dict(stats or {})
        self._image_loader = image_loader
        self._describe = describe_image

    def __len__(self) -> int:
        return len(self.instances)

    def parts_for(self, category: str) -> list[str]:
        """The part names of ``category`` in their fixed order."""
        return self.category_parts.get(category, self.parts)

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys(i.split for i in self.instances))

    def limited(self, count: int | None) -> KeypointDataset:
        """The first ``count`` instances (all when None)."""
        return keep_first(self, "instances", count)


# ---------------------------------------------------------------------------- marking geometry


def point_box(
    point: Sequence[float],
    radius: float,
    unit: RadiusUnit = RadiusUnit.input,
    instance_box: Sequence[float] | None = None,
    image_size: tuple[int, int] | None = None,
    input_size: int | None = None,
    resize: GeometryMode = GeometryMode.squash,
) -> Box:
    """The box ``[x, y, w, h]`` whose inscribed ellipse is a circle of ``radius`` around ``point``.

    ``unit="input"``: ``radius`` pixels as the model sees it at ``input_size``, converted to image
    pixels by the ``resize`` that brings the image to the model's square input (SPEC §4; pass the
    one the run uses): ``squash`` (both sides resized: each axis by its own factor, so the circle is
    round at model input), ``pad`` (longest side to ``input_size``: ``max(w, h) / input_size``) or
    ``crop`` (shortest side to ``input_size``, then a centre crop: ``min(w, h) / input_size``, the
    rule the visual prompts use for their thickness; points outside the central square are cut).
    ``unit="box"``: ``radius * max(w, h)`` of ``instance_box`` in image pixels on both axes.

    The point is first clamped into the image and the box clipped to it, so a point on (or just
    past) an edge still gets a box with area inside the image: the drawn ellipse reaches the model.
    """
    if radius <= 0 or not math.isfinite(radius):
        raise ConfigError(f"task.radius must be a positive number, got {radius!r}")
    if image_size is None:
        raise ConfigError("point_box needs the image size (w, h)")
    width, height = float(image_size[0]), float(image_size[1])
    unit = RadiusUnit.parse(unit, "task.radius_unit")
    resize = GeometryMode.parse(resize, "task.image_processing")
    if unit == "box":
        if instance_box is None:
            raise ConfigError("radius unit 'box' needs the instance box")
        rx = ry = float(radius) * max(float(instance_box[2]), float(instance_box[3]))
    elif unit == "input":
        if not input_size:
            raise ConfigError("radius unit 'input' needs the model's input size")
        if resize == "squash":
            rx, ry = radius * width / input_size, radius * height / input_size
        elif resize == "crop":
            rx = ry = radius * min(width, height) / input_size
        else:
            rx = ry = radius * max(width, height) / input_size
    px = min(max(float(point[0]), 0.0), width)
    py = min(max(float(point[1]), 0.0), height)
    x0, y0 = max(px - rx, 0.0), max(py - ry, 0.0)
    x1, y1 = min(px + rx, width), min(py + ry, height)
    return [x0, y0, x1 - x0, y1 - y0]


# ---------------------------------------------------------------------------- PCK


def pck_threshold(box: Sequence[float], alpha: float = DEFAULT_ALPHA) -> float:
    """The PCK distance threshold of an instance: ``alpha * max(box w, box h)``."""
    return float(alpha) * max(float(box[2]), float(box[3]))


def point_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Euclidean distance between two points."""
    return math.hypot(float(a[0]) - float(b[0]), float(a[1]) - float(b[1]))


@dataclass(frozen=True)
class LocalizationQuery:
    """Find ``part`` of instance ``instance`` among its visible keypoints ``candidates`` (part names)."""

    instance: int
    part: str
    candidates: tuple[str, ...]

    @property
    def gold(self) -> int:
        """The position of the asked part among the candidates."""
        return self.candidates.index(self.part)


@dataclass(frozen=True)
class LocalizationOutcome:
    """One localisation answer: the chosen part, its distance to the gold point, and the chance level."""

    query: int
    part: str
    chosen: str
    distance: float
    threshold: float
    correct: bool
    chance: float
    num_candidates: int


def localization_queries(dataset: KeypointDataset) -> list[LocalizationQuery]:
    """One query per visible part of every instance, in instance then part order."""
    queries = []
    for index, instance in enumerate(dataset.instances):
        visible = tuple(instance.visible_parts(dataset.parts_for(instance.category)))
        queries.extend(LocalizationQuery(index, part, visible) for part in visible)
    return queries


def localization_chance(instance: KeypointInstance, query: LocalizationQuery, alpha: float = DEFAULT_ALPHA) -> float:
    """The share of the query's candidates within the PCK threshold of the gold point."""
    gold = instance.keypoints[query.part]
    threshold = pck_threshold(instance.box, alpha)
    near = sum(point_distance(instance.keypoints[c], gold) <= threshold for c in query.candidates)
    return near / len(query.candidates)


def localization_outcomes(
    dataset: KeypointDataset,
    queries: Sequence[LocalizationQuery],
    chosen: Sequence[int],
    alpha: float = DEFAULT_ALPHA,
) -> list[LocalizationOutcome]:
    """Score the chosen candidate (its position in ``query.candidates``) of each query."""
    if len(chosen) != len(queries):
        raise ValueError(f"{len(chosen)} choices for {len(queries)} queries")
    out = []
    for q_index, (query, pick) in enumerate(zip(queries, chosen)):
        instance = dataset.instances[query.instance]
        answer = query.candidates[int(pick)]
        distance = point_distance(instance.keypoints[answer], instance.keypoints[query.part])
        threshold = pck_threshold(instance.box, alpha)
        out.append(
            LocalizationOutcome(
                query=q_index,
                part=query.part,
                chosen=answer,
                distance=distance,
                threshold=threshold,
                correct=distance <= threshold,
                chance=localization_chance(instance, query, alpha),
                num_candidates=len(query.candidates),
            )
        )
    return out


def summarize_localization(
    outcomes: Sequence[LocalizationOutcome], alpha: float = DEFAULT_ALPHA
) -> dict[str, float | int | str]:
    """``pck``, ``pck.<part>``, ``chance_pck``, ``chance_pck.<part>``, ``pck_alpha``, ``pck_reference``,
    ``num_keypoints``, ``data.single_candidate`` (queries with one candidate: trivially correct, chance 1)."""
    result: dict[str, float | int | str] = {
        "pck": _mean([o.correct for o in outcomes]),
        "chance_pck": _mean([o.chance for o in outcomes]),
        "pck_alpha": float(alpha),
        "pck_reference": PCK_REFERENCE,
        "num_keypoints": len(outcomes),
        "data.single_candidate": sum(o.num_candidates == 1 for o in outcomes),
    }
    for part in dict.fromkeys(o.part for o in outcomes):
        mine = [o for o in outcomes if o.part == part]
        result[f"pck.{part}"] = _mean([o.correct for o in mine])
        result[f"chance_pck.{part}"] = _mean([o.chance for o in mine])
    return result


# ---------------------------------------------------------------------------- naming


@dataclass(frozen=True)
class NamingQuery:
    """Name the marked keypoint ``part`` of instance ``instance`` among ``labels`` (its category's parts)."""

    instance: int
    part: str
    labels: tuple[str, ...]

    @property
    def gold(self) -> int:
        return self.labels.index(self.part)


def naming_queries(dataset: KeypointDataset) -> list[NamingQuery]:
    """One query per visible keypoint of every instance, in instance then part order."""
    queries = []
    for index, instance in enumerate(dataset.instances):
        labels = tuple(dataset.parts_for(instance.category))
        queries.extend(NamingQuery(index, part, labels) for part in instance.visible_parts(labels))
    return queries


def summarize_naming(
    gold: Sequence[str],
    predicted: Sequence[str],
    labels: Sequence[Sequence[str]],
    mirror: Mapping[str, str] | None = None,
) -> dict[str, float | int]:
    """``acc``, ``acc.<part>``, ``acc_lr_merged``, ``chance_acc``, ``chance_acc_lr_merged``, ``num_keypoints``.

    ``labels[i]``: the names query ``i`` chose among. Left/right-merged: predicting the ``mirror``
    partner of the gold part counts as correct; its chance counts the partner too when it is a label.
    """
    if not len(gold) == len(predicted) == len(labels):
        raise ValueError(f"{len(gold)} gold, {len(predicted)} predicted and {len(labels)} label lists")
    mirror = dict(mirror or {})
    correct = [g == p for g, p in zip(gold, predicted)]
    merged = [g == p or mirror.get(g) == p for g, p in zip(gold, predicted)]
    chance = [1.0 / len(ls) for ls in labels]
    chance_merged = [(1 + (mirror.get(g) in ls)) / len(ls) for g, ls in zip(gold, labels)]
    result: dict[str, float | int] = {
        "acc": _mean(correct),
        "acc_lr_merged": _mean(merged),
        "chance_acc": _mean(chance),
        "chance_acc_lr_merged": _mean(chance_merged),
        "num_keypoints": len(gold),
    }
    for part in dict.fromkeys(gold):
        result[f"acc.{part}"] = _mean([c for c, g in zip(correct, gold) if g == part])
    return result


@dataclass
class Confusion:
    """Counts ``rows[gold][predicted]`` over ``labels`` (row and column order)."""

    labels: list[str]
    counts: list[list[int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {g: dict(zip(self.labels, row)) for g, row in zip(self.labels, self.counts)}


def confusion_table(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> Confusion:
    """The confusion counts of naming (rows: gold part, columns: predicted part).

    ``labels`` fixes the order (default: first-seen order of gold then predicted names).
    """
    order = list(labels) if labels is not None else list(dict.fromkeys([*gold, *predicted]))
    where = {name: i for i, name in enumerate(order)}
    counts = [[0] * len(order) for _ in order]
    for g, p in zip(gold, predicted):
        if g not in where or p not in where:
            raise ValueError(f"confusion_table: {g!r} or {p!r} is not among the labels {order}")
        counts[where[g]][where[p]] += 1
    return Confusion(order, counts)


def _mean(values: Sequence[float | bool]) -> float:
    return float(sum(float(v) for v in values) / len(values)) if values else float("nan")
