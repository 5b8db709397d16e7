"""What the published description scripts do, per job: load the model, load every image, encode
the images, encode the descriptions, score. Used only as the baseline of the speed benchmark."""

from __future__ import annotations

import torch
from PIL import Image
from torch.nn import functional as F

from descbench.core.backbone import build_backbone
from descbench.core.description_text import format_description


def naive_job(
    model_name: str,
    image_paths: list[str],
    labels: list[int],
    classes: list[str],
    descriptors: dict[str, list[str]],
    *,
    num_desc: int,
    as_is: bool,
    batch_size: int = 64,
) -> float:
    """One sweep point from scratch; returns top-1."""
    backbone = build_backbone(model_name, random_init=True, seed=0)  # every job loads its model
    model = backbone.model.eval()
    with torch.no_grad():
        feats = []
        for start in range(0, len(image_paths), batch_size):
            batch = []
            for path in image_paths[start : start + batch_size]:
                with Image.open(path) as image:
                    batch.append(backbone.preprocess(image.convert("RGB")))
            feats.append(F.normalize(model.encode_image(torch.stack(batch)).float(), dim=-1))
        images = torch.cat(feats)
        scores = []
        for name in classes:
            items = descriptors[name][:num_desc]
            texts = items if as_is else [format_description(name, d) for d in items]
            text = F.normalize(model.encode_text(backbone.tokenizer(texts)).float(), dim=-1)
            scores.append((images @ text.T).mean(dim=1))
        pred = torch.stack(scores, dim=1).argmax(dim=1)
    return float((pred == torch.tensor(labels)).float().mean())
