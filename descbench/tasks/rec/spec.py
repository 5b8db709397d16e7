"""``task=rec``: the options (this signature is the config's schema), the job of one run and its cache."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import torch

from descbench.core.backbone import Backbone
from descbench.core.choices import Count, Natural
from descbench.core.description_text import check_template
from descbench.core.feature_cache import CandidateFeatureCache, TextFeatureCache, digest, files_fingerprint
from descbench.core.marking.engine import EXPRESSION_TEMPLATE
from descbench.core.marking.geometry import PAD_FILL, Geometry, GeometryMode
from descbench.core.marking.relations import Relations
from descbench.tasks.marking import build_marked_dataset, collate_groups, visual_prompts_of
from descbench.tasks.rec.module import RecFeatureDataset, RecImageDataset, RecTask, group_offsets
from descbench.tasks.runner import TaskJob

log = logging.getLogger("descbench")


class RecTaskSpec:
    """``task=rec``: referring expressions with visual prompts (SPEC §4).

    Each candidate box is marked in pixel space (``visual_prompt``: a list is an ensemble, scores summed) and
    CLIP picks the one whose marked image best matches ``template`` filled with the expression (lower-cased
    first with ``lowercase``, as ReCLIP). ``image_processing``: how a marked image reaches the model's square
    input — ``squash`` (both sides resized, as ReCLIP/FGVP), ``pad`` (letterboxed with ``pad_fill``, the CLIP
    mean: zero after normalisation) or ``crop`` (open_clip's resize + centre crop: markings near the long-axis
    edges are cut away); markings are drawn at input resolution. ``relations``: ``rules`` resolves ReCLIP-style
    spatial relations after scoring (``core/marking/relations.yaml``). ``subtract``: each candidate's mean
    score over ``negatives`` expressions of the split (seeded) is subtracted. ``extra_backbones``: backbone
    configs whose scores are summed with ``backbone``'s. A batch holds ``batch_size`` images, each with all its
    expressions and candidates; ``num_examples`` are drawn to ``examples/`` and W&B.
    """

    def __init__(
        self,
        template: str = EXPRESSION_TEMPLATE,
        lowercase: bool = False,
        image_processing: GeometryMode = GeometryMode.squash,
        pad_fill: tuple[int, int, int] = PAD_FILL,
        relations: Relations = Relations.none,
        subtract: bool = False,
        negatives: Annotated[int, Count] = 10,
        extra_backbones: Sequence[Any] = (),
        batch_size: Annotated[int, Count] = 8,
        num_workers: Annotated[int, Natural] = 2,
        pin_memory: bool = True,
        num_examples: Annotated[int, Natural] = 8,
    ) -> None:
        self.template = check_template(template, fields=("expression",), required="expression", key="task.template")
        self.subtract, self.negatives = bool(subtract), int(negatives)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.num_examples = num_examples
        self.lowercase = bool(lowercase)
        self.geometry = Geometry(image_processing, tuple(pad_fill))
        self.relations = Relations.parse(relations, "task.relations")

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        """Visual prompts, the data set, the module, the marked-candidate feature cache."""
        from descbench.tasks.rec.outputs import write_rec_outputs

        prompts = visual_prompts_of(cfg.get("visual_prompt"), "rec")
        dataset = build_marked_dataset(cfg)
        text_encoders = None
        if cfg.cache.text:
            text_encoders = []
            for backbone in backbones:
                text_cache = TextFeatureCache(cfg.paths.cache_dir, backbone.identity)
                text_encoders.append(lambda texts, c=text_cache, b=backbone: c.encode(texts, b.encode_texts))
        images = RecImageDataset(dataset, prompts, backbones, self.geometry)
        module = RecTask(
            backbones,
            dataset,
            images.groups,
            prompts,
            template=self.template,
            subtract=self.subtract,
            negatives=self.negatives,
            seed=cfg.seed,
            text_encoders=text_encoders,
            lowercase=self.lowercase,
            relations=self.relations,
            geometry_key=self.geometry.key,
        )
        features = None
        if cfg.cache.features:
            cache = CandidateFeatureCache(cfg.paths.cache_dir)
            features = CandidateFeatures(cache, backbones, images, prompts, cfg, module)
        return TaskJob(
            module=module,
            images=images,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_groups,
            features=features,
            feature_kind="candidate features",
            write_outputs=lambda metrics: write_rec_outputs(
                cfg, context, module, dataset, prompts, metrics, self.geometry
            ),
            objects={"dataset": dataset},
        )


def dataset_source(name: str, builder: Mapping[str, Any]) -> str:
    """The data part of a candidate-cache key: the data set's name and the reader's options.

    Hydra's own keys (``_target_``, ``_convert_``) are left out: they name where the reader's code lives,
    and moving that code must not invalidate every cache file.
    """
    options = {k: v for k, v in builder.items() if not str(k).startswith("_")}
    return f"{name}:{digest(options)}"


class CandidateFeatures:
    """The marked-candidate cache of one REC job: one file per (backbone, visual prompt)."""

    def __init__(
        self, cache: CandidateFeatureCache, backbones, images: RecImageDataset, prompts, cfg, module: RecTask
    ) -> None:
        from omegaconf import OmegaConf

        self.cache, self.prompts = cache, list(prompts)
        self.offsets = group_offsets(images.groups)
        layout = [(g.image_id, g.boxes) for g in images.groups]
        dataset = images.dataset
        source = dataset_source(dataset.name, OmegaConf.to_container(cfg.dataset.builder, resolve=True))
        paths = dataset.image_paths([g.image_id for g in images.groups])
        files = files_fingerprint(paths, cfg.cache.verify) if paths else None
        self.keys = [
            [
                CandidateFeatureCache.key(
                    backbone=backbone.identity,
                    transform=f"{backbone.preprocess!r}@{backbone.image_size}:{images.geometry.key}",
                    prompt=spec.key,
                    dataset=source,
                    groups=layout,
                    precision=str(cfg.trainer.precision),
                    files=files,
                )
                for spec in prompts
            ]
            for backbone in backbones
        ]
        self.absent: list[tuple[int, int]] = []
        self.module = module

    def lookup(self) -> RecFeatureDataset | None:
        cached = [[self.cache.load(key) for key in row] for row in self.keys]
        self.absent = [(b, p) for b, row in enumerate(cached) for p, f in enumerate(row) if f is None]
        self.module.keep_features = bool(self.absent)
        if self.absent:
            return None
        return RecFeatureDataset([torch.stack(row) for row in cached], self.offsets)

    @property
    def missing(self) -> bool:
        return bool(self.absent)

    def save(self, module: RecTask) -> None:
        for b, p in self.absent:
            path = self.cache.save(self.keys[b][p], module.candidate_features[b][:, p], self.offsets)
            if path is not None:
                log.info("candidate features: %s written to %s", self.prompts[p].key, path)
