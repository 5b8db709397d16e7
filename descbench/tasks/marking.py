"""What the tasks that mark images share: the visual prompts of a config, the marked-image test sets, the
examples drawn for a run dir and W&B.

REC, keypoints and the marking-bias probe each mark candidates (boxes, points, a person and a control) on
the original image and hand the model one preprocessed batch per backbone; they build on
:class:`MarkedImages` instead of importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from descbench.core.backbone import Backbone
from descbench.core.marking.engine import prepare_group
from descbench.core.marking.geometry import Geometry
from descbench.core.marking.visual_prompts import VISUAL_PROMPTS, PromptSpec, VisualPromptError, parse_prompt_specs

GOLD, CHOSEN = (0, 200, 0), (255, 0, 0)


def build_marked_dataset(cfg: Any) -> Any:
    """The reader a marking task's config names (``dataset.builder``), cut to ``dataset.limit``: what a job
    evaluates, and what a report rebuilds from the job's saved config to draw its examples."""
    from descbench.shell.config import build

    return build(cfg.dataset.builder, _convert_="all").limited(cfg.dataset.get("limit"))


def visual_prompts_of(visual_prompt: Any, task: str) -> list[PromptSpec]:
    """The ``visual_prompt`` config (``{circle: {thickness: 2}, crop: {}}``: an ensemble, scores summed) as
    checked specs; ``task`` names who asks when there is none."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(visual_prompt, (DictConfig, ListConfig)):
        visual_prompt = OmegaConf.to_container(visual_prompt, resolve=True)
    if not visual_prompt:
        raise VisualPromptError(
            f"task={task} needs a visual prompt: visual_prompt=NAME, NAME one of {', '.join(VISUAL_PROMPTS)} "
            "(a list is an ensemble: visual_prompt=[circle,crop])"
        )
    if isinstance(visual_prompt, Mapping):
        return parse_prompt_specs([{"name": key, **(options or {})} for key, options in visual_prompt.items()])
    return parse_prompt_specs(visual_prompt)


class Preprocessor:
    """What a DataLoader worker needs of a backbone: its preprocessing and input size (no weights)."""

    def __init__(self, backbone: Backbone) -> None:
        self.preprocess = backbone.preprocess
        self.image_size = backbone.image_size


def collate_groups(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items have different candidate counts: a batch is a list of items."""
    return items


class MarkedImages(Dataset):
    """A test set whose items are images with their candidates marked: ``dataset`` (a reader with
    ``load_image``), the visual ``prompts``, one :class:`Preprocessor` per backbone, the ``geometry``."""

    def __init__(
        self, dataset: Any, prompts: Sequence[PromptSpec], backbones: Sequence[Backbone], geometry: Geometry
    ) -> None:
        self.dataset = dataset
        self.prompts = list(prompts)
        self.preprocessors = [Preprocessor(b) for b in backbones]
        self.geometry = geometry

    def mark(
        self,
        image: Image.Image,
        boxes: Sequence[Sequence[float]],
        prompts: Sequence[PromptSpec] | None = None,
        preprocessors: Sequence[Preprocessor] | None = None,
    ) -> list[torch.Tensor]:
        """Every box marked with every prompt, per backbone: ``[P * C, 3, H, W]`` each (prompt-major)."""
        return prepare_group(
            image, boxes, list(prompts or self.prompts), list(preprocessors or self.preprocessors), self.geometry
        )


def draw_example(
    image: Image.Image,
    caption: str,
    boxes: Sequence[tuple[Sequence[float], tuple[int, int, int]]] = (),
    points: Sequence[tuple[Sequence[float], tuple[int, int, int]]] = (),
) -> Image.Image:
    """The image (small canvases upscaled to be legible) with ``boxes`` ``[x, y, w, h]`` and ``points``
    ``(x, y)`` outlined in their colours, the caption written above."""
    scale = max(1.0, 256 / max(image.size))
    image = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)), Image.NEAREST)
    out = Image.new("RGB", (image.width, image.height + 16), (255, 255, 255))
    out.paste(image, (0, 16))
    draw = ImageDraw.Draw(out)
    for box, colour in boxes:
        x, y, w, h = (float(v) * scale for v in box)
        draw.rectangle([x, y + 16, x + w - 1, y + h - 1 + 16], outline=colour, width=2)
    for (x, y), colour in points:
        cx, cy, r = x * scale, y * scale + 16, 5
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=2)
    draw.text((2, 2), caption[: max(8, image.width // 6)], fill=(0, 0, 0))
    return out
