"""``task=classify``: the options (this signature is the config's schema) and the job of one run."""

from __future__ import annotations

import logging
from typing import Annotated

import torch
from torch.utils.data import TensorDataset

from descbench.core.backbone import Backbone
from descbench.core.choices import Count, Natural
from descbench.core.description_set import DescriptionSet
from descbench.core.feature_cache import ImageFeatureCache, TextFeatureCache, files_fingerprint
from descbench.core.head import Aggregation
from descbench.core.metrics import check_entropy_scale
from descbench.shell.config import build, build_then_call
from descbench.tasks.classify.module import ClassificationTask
from descbench.tasks.runner import TaskJob

log = logging.getLogger("descbench")


class ClassifyTask:
    """``task=classify``: classification by description (SPEC §2).

    Options: ``aggregation`` (how a class's description scores combine); ``entropy_scale``: ``minmax`` (each
    image's scores min-max scaled to [-10, 10], the study's convention), ``logit_scale`` (the model's
    temperature) or a positive number; ``feature_batch_size``: the batch size when the loop runs over cached
    image features; ``channels_last``: the image tower's memory format.
    """

    def __init__(
        self,
        aggregation: Aggregation = Aggregation.score_mean,
        entropy_scale: str | float = "minmax",
        batch_size: Annotated[int, Count] = 64,
        num_workers: Annotated[int, Natural] = 2,
        pin_memory: bool = True,
        feature_batch_size: Annotated[int, Count] = 4096,
        channels_last: bool = False,
    ) -> None:
        self.aggregation = Aggregation.parse(aggregation, "task.aggregation")
        self.entropy_scale = check_entropy_scale(entropy_scale)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.feature_batch_size = feature_batch_size
        self.channels_last = channels_last

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        """The data set, its description set (built by the runner), the module, the image-feature cache."""
        from descbench.tasks.classify.outputs import write_classification_outputs

        backbone = backbones[0]
        dataset = build(cfg.dataset.builder, transform=backbone.preprocess).limited(
            cfg.dataset.get("limit"), seed=cfg.dataset.get("limit_seed", 0)
        )
        text_encoder = None
        if cfg.cache.text:
            text_cache = TextFeatureCache(cfg.paths.cache_dir, backbone.identity)

            def text_encoder(texts: list[str]):
                # in a sweep, the texts of the source's other num_desc are encoded with this job's (one
                # job alone does not pay for them)
                sweep = getattr(context, "multirun", False) and module.descriptions is not None
                ahead = module.descriptions.ahead if sweep else ()
                return text_cache.encode(texts, backbone.encode_texts, ahead=ahead)

        module = ClassificationTask(
            backbone,
            num_classes=len(dataset.classes),
            aggregation=self.aggregation,
            entropy_scale=self.entropy_scale,
            text_encoder=text_encoder,
            channels_last=self.channels_last,
        )

        def build_text() -> DescriptionSet:
            return build_then_call(
                cfg.describe, classes=list(dataset.classes), native=dataset.native, class_ids=dataset.class_ids
            )

        features = None
        if cfg.cache.features:
            features = ImageFeatures(ImageFeatureCache(cfg.paths.cache_dir), backbone, dataset, cfg, module)
        return TaskJob(
            module=module,
            images=dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            features=features,
            feature_kind="image features",
            feature_batch_size=self.feature_batch_size,
            build_text=build_text,
            use_text=module.set_descriptions,
            write_outputs=lambda metrics: write_classification_outputs(cfg, context, module, dataset, metrics),
            objects={"dataset": dataset},
        )


class ImageFeatures:
    """The image-feature cache of one classification job: one file per (backbone, data, transform, precision)."""

    def __init__(self, cache: ImageFeatureCache, backbone: Backbone, dataset, cfg, module: ClassificationTask) -> None:
        self.cache, self.module = cache, module
        paths = dataset.sample_paths()
        self.key = ImageFeatureCache.key(
            backbone=backbone.identity,
            dataset=dataset.name,
            split=dataset.split,
            transform=repr(backbone.preprocess),
            sample_ids=dataset.identity(),
            precision=str(cfg.trainer.precision),
            files=files_fingerprint(paths, cfg.cache.verify) if paths else None,
        )
        self._missing = True

    def lookup(self) -> TensorDataset | None:
        cached = self.cache.load(self.key)
        self._missing = cached is None
        self.module.features_input = cached is not None
        self.module.keep_features = cached is None
        if cached is None:
            return None
        features, labels = cached
        return TensorDataset(features, labels, torch.arange(len(labels)))

    @property
    def missing(self) -> bool:
        return self._missing

    def save(self, module: ClassificationTask) -> None:
        path = self.cache.save(self.key, module.predictions["features"], module.predictions["label"])
        if path is not None:
            log.info("image features: written to %s", path)
