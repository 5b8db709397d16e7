"""Classification by description as a LightningModule."""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import torch
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from descbench.backbone import Backbone
from descbench.cache.features import ImageFeatureCache, TextFeatureCache
from descbench.descriptions.types import DescriptionSet
from descbench.head import DescriptionHead, ragged_class_index
from descbench.metrics import MeanEntropy, build_classification_metrics, entropy_nats, scale_scores
from descbench.tasks.datamodule import gather_rows

log = logging.getLogger("descbench")


class ClassificationTask(L.LightningModule):
    """Scores each test batch against the description head; metrics are torchmetrics objects.

    ``descriptions`` is called once per process in ``setup`` (rank 0 first, so a language
    model is asked at most once; the other ranks then read what it cached). Batches are
    ``(images, labels, indices)``, or ``(features, labels, indices)`` when the image
    features come from the cache (``features_input=True``).
    """

    def __init__(
        self,
        backbone: Backbone,
        descriptions: Callable[[bool], DescriptionSet],
        num_classes: int,
        aggregation: str = "score_mean",
        entropy_scale: str | float = "minmax",
        features_input: bool = False,
        keep_features: bool = False,
        text_encoder: Callable[[list[str]], torch.Tensor] | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.describe_fn = descriptions
        self.aggregation = aggregation
        self.entropy_scale = entropy_scale
        self.features_input = features_input
        self.keep_features = keep_features
        self.text_encoder = text_encoder
        self.channels_last = channels_last
        self.metrics = build_classification_metrics(num_classes)
        self.per_class = MulticlassAccuracy(num_classes, average="none")
        self.entropy = MeanEntropy()
        self.descriptions: DescriptionSet | None = None
        self.head: DescriptionHead | None = None
        self._rows: dict[str, list[torch.Tensor]] = {}
        self.predictions: dict[str, torch.Tensor] | None = None
        self.per_class_acc: list[float] | None = None

    def setup(self, stage: str) -> None:
        if self.descriptions is not None:
            return
        if self.trainer.world_size > 1:
            if self.trainer.is_global_zero:
                self.descriptions = self.describe_fn(True)
            self.trainer.strategy.barrier("descriptions")
            if not self.trainer.is_global_zero:
                self.descriptions = self.describe_fn(False)
        else:
            self.descriptions = self.describe_fn(True)

    @torch.no_grad()
    def on_test_start(self) -> None:
        # The text side once, on the device, batched; a ragged layout (flat rows + class index).
        flat = [t for texts in self.descriptions.texts for t in texts]
        encode = self.text_encoder or self.backbone.encode_texts
        embeddings = encode(flat).to(self.device)
        index = ragged_class_index(self.descriptions.counts, device=self.device)
        self.head = DescriptionHead(embeddings, index, len(self.descriptions.classes), self.aggregation)
        self._rows = {"index": [], "label": [], "pred": [], "top5": [], "confidence": [], "entropy": []}
        if self.keep_features:
            self._rows["features"] = []

    def test_step(self, batch, batch_idx: int) -> None:
        inputs, labels, indices = batch
        if self.features_input:
            features = inputs.float()
        else:
            if self.channels_last:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            features = self.backbone.encode_images(inputs)
        scores = self.head(features)
        logits = scale_scores(scores, self.entropy_scale, self.backbone.logit_scale)
        probs = logits.float().softmax(dim=1)
        self.metrics.update(probs, labels)
        self.entropy.update(logits)
        self.log_dict(self.metrics, on_step=False, on_epoch=True)
        self.log("entropy", self.entropy, on_step=False, on_epoch=True)
        self.per_class.update(probs, labels)
        top = scores.topk(min(5, scores.shape[1]), dim=1).indices
        self._rows["index"].append(indices)
        self._rows["label"].append(labels)
        self._rows["pred"].append(top[:, 0])
        self._rows["top5"].append(top)
        self._rows["confidence"].append(probs.max(dim=1).values)
        self._rows["entropy"].append(entropy_nats(logits))
        if self.keep_features:
            self._rows["features"].append(features.float())

    def on_test_epoch_end(self) -> None:
        # The logged metric objects are computed (synced across ranks) by Lightning.
        self.per_class_acc = self.per_class.compute().tolist()
        self.per_class.reset()
        rows = gather_rows({k: torch.cat(v) for k, v in self._rows.items()})
        order = torch.argsort(rows["index"])
        self.predictions = {k: v[order].cpu() for k, v in rows.items()}
        self._rows = {}


def run_classification(cfg, context) -> tuple[dict, dict]:
    """Build backbone, data, descriptions and trainer from ``cfg``; test; write the job's outputs."""
    from hydra.utils import instantiate

    from descbench.descriptions.sources import check_num_desc
    from descbench.tasks.datamodule import EvalDataModule
    from descbench.tasks.outputs import write_classification_outputs

    check_num_desc(cfg.num_desc)
    backbone = instantiate(cfg.backbone)
    dataset = instantiate(cfg.dataset.builder, transform=backbone.preprocess).limited(cfg.dataset.get("limit"))
    cache_dir = cfg.paths.cache_dir
    image_cache = ImageFeatureCache(cache_dir) if cfg.cache.features else None
    key = None
    cached = None
    if image_cache is not None:
        key = ImageFeatureCache.key(
            backbone=backbone.identity,
            dataset=dataset.name,
            split=dataset.split,
            transform=repr(backbone.preprocess),
            sample_ids=dataset.identity(),
            precision=str(cfg.trainer.precision),
        )
        cached = image_cache.load(key)
    log.info("image features: %s", "cached" if cached is not None else "computing")
    text_encoder = None
    if cfg.cache.text:
        text_cache = TextFeatureCache(cache_dir, backbone.identity)
        text_encoder = lambda texts: text_cache.encode(texts, backbone.encode_texts)  # noqa: E731

    def describe(may_generate: bool) -> DescriptionSet:
        extra = {} if may_generate or "offline" not in cfg.describe else {"offline": True}
        return instantiate(cfg.describe, classes=list(dataset.classes), native=dataset.native, _convert_="all", **extra)

    module = ClassificationTask(
        backbone,
        describe,
        num_classes=len(dataset.classes),
        aggregation=cfg.task.aggregation,
        entropy_scale=cfg.task.entropy_scale,
        features_input=cached is not None,
        keep_features=image_cache is not None and cached is None,
        text_encoder=text_encoder,
        channels_last=cfg.task.channels_last,
    )
    if cached is not None:
        features, labels = cached
        loop_data = TensorDataset(features, labels, torch.arange(len(labels)))
        batch_size, workers = cfg.task.feature_batch_size, 0
    else:
        loop_data, batch_size, workers = dataset, cfg.task.batch_size, cfg.task.num_workers
    datamodule = EvalDataModule(loop_data, batch_size=batch_size, num_workers=workers, pin_memory=cfg.task.pin_memory)
    trainer = instantiate(cfg.trainer, logger=context.logger or False)
    logged = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    metrics = {k: float(v) for k, v in logged.items()}
    objects = {"module": module, "dataset": dataset, "backbone": backbone, "trainer": trainer}
    if trainer.is_global_zero:
        if image_cache is not None and cached is None:
            path = image_cache.save(key, module.predictions["features"], module.predictions["label"])
            log.info("image features: written to %s", path)
        metrics = write_classification_outputs(cfg, context, module, dataset, metrics)
    return metrics, objects
