"""Classification by description as a LightningModule."""

from __future__ import annotations

import logging
from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torch.utils.data import TensorDataset
from torchmetrics.classification import MulticlassAccuracy

from descbench.core.backbone import Backbone
from descbench.core.description_set import DescriptionSet
from descbench.core.feature_cache import ImageFeatureCache, TextFeatureCache, files_fingerprint
from descbench.core.head import DescriptionHead, ragged_class_index
from descbench.core.metrics import MeanEntropy, build_classification_metrics, entropy_nats, scale_scores
from descbench.shell.config import build
from descbench.tasks.datamodule import gather_rows
from descbench.tasks.runner import TaskJob

log = logging.getLogger("descbench")


class ClassificationTask(L.LightningModule):
    """Scores each test batch against the description head; metrics are torchmetrics objects.

    The description set is given before the test loop (:meth:`set_descriptions`; the runner builds it,
    rank 0 first). A set with repetitions (a random control with ``reps > 1``) gets one head and one
    set of metric objects per repetition, all scored on the same image features. Images of excluded
    classes (the study's wrong-count rule) are left out of every metric; the classes stay candidates.
    Batches are ``(images, labels, indices)``, or ``(features, labels, indices)`` when the image
    features come from the cache (``features_input=True``).
    """

    def __init__(
        self,
        backbone: Backbone,
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
        self.num_classes = num_classes
        self.aggregation = aggregation
        self.entropy_scale = entropy_scale
        self.features_input = features_input
        self.keep_features = keep_features
        self.text_encoder = text_encoder
        self.channels_last = channels_last
        self.descriptions: DescriptionSet | None = None
        self.heads: list[DescriptionHead] = []
        self._rows: dict[str, list[torch.Tensor]] = {}
        self.predictions: dict[str, torch.Tensor] | None = None
        self.per_class_acc: list[list[float]] | None = None

    def set_descriptions(self, descriptions: DescriptionSet) -> None:
        """The description set to score against, and one set of metric objects per repetition."""
        self.descriptions = descriptions
        reps = len(descriptions.all_repetitions())
        self.metrics = nn.ModuleList([build_classification_metrics(self.num_classes) for _ in range(reps)])
        self.per_class = nn.ModuleList([MulticlassAccuracy(self.num_classes, average="none") for _ in range(reps)])
        self.entropy = nn.ModuleList([MeanEntropy() for _ in range(reps)])
        included = torch.ones(self.num_classes, dtype=torch.bool)
        included[list(descriptions.excluded)] = False
        self.register_buffer("included", included, persistent=False)

    @property
    def num_reps(self) -> int:
        return len(self.metrics)

    def metric_name(self, rep: int, name: str) -> str:
        """``top1`` for a single set; ``rep2.top1`` for repetition 2 of several."""
        return name if self.num_reps == 1 else f"rep{rep}.{name}"

    @torch.no_grad()
    def on_test_start(self) -> None:
        # The text side once, on the device, batched; a ragged layout (flat rows + class index).
        encode = self.text_encoder or self.backbone.encode_texts
        self.heads = []
        for rep in self.descriptions.all_repetitions():
            embeddings = encode([t for texts in rep.texts for t in texts]).to(self.device)
            index = ragged_class_index(rep.counts, device=self.device)
            self.heads.append(DescriptionHead(embeddings, index, len(rep.classes), self.aggregation))
        self._rows = {k: [] for k in ("index", "label", "evaluated", "pred", "top5", "confidence", "entropy")}
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
        evaluated = self.included[labels]
        preds, top5s, confidences, entropies = [], [], [], []
        for r, head in enumerate(self.heads):
            scores = head(features)
            logits = scale_scores(scores, self.entropy_scale, self.backbone.logit_scale)
            probs = logits.float().softmax(dim=1)
            self.metrics[r].update(probs[evaluated], labels[evaluated])
            self.entropy[r].update(logits[evaluated])
            self.per_class[r].update(probs[evaluated], labels[evaluated])
            self.log_dict({self.metric_name(r, k): m for k, m in self.metrics[r].items()}, on_step=False, on_epoch=True)
            self.log(self.metric_name(r, "entropy"), self.entropy[r], on_step=False, on_epoch=True)
            top = scores.topk(min(5, scores.shape[1]), dim=1).indices
            preds.append(top[:, 0])
            top5s.append(top)
            confidences.append(probs.max(dim=1).values)
            entropies.append(entropy_nats(logits))
        self._rows["index"].append(indices)
        self._rows["label"].append(labels)
        self._rows["evaluated"].append(evaluated)
        self._rows["pred"].append(torch.stack(preds, dim=1))  # [B, reps]
        self._rows["top5"].append(torch.stack(top5s, dim=1))  # [B, reps, k]
        self._rows["confidence"].append(torch.stack(confidences, dim=1))
        self._rows["entropy"].append(torch.stack(entropies, dim=1))
        if self.keep_features:
            self._rows["features"].append(features.float())

    def on_test_epoch_end(self) -> None:
        # The logged metric objects are computed (synced across ranks) by Lightning.
        self.per_class_acc = []
        for metric in self.per_class:
            self.per_class_acc.append(metric.compute().tolist())
            metric.reset()
        rows = gather_rows({k: torch.cat(v) for k, v in self._rows.items()})
        order = torch.argsort(rows["index"])
        self.predictions = {k: v[order].cpu() for k, v in rows.items()}
        self._rows = {}


class ClassifyTask:
    """``task=classify``: classification by description (SPEC §2); the options of ``conf/task/classify.yaml``."""

    def __init__(
        self,
        name: str = "classify",
        aggregation: str = "score_mean",
        entropy_scale: str | float = "minmax",
        batch_size: int = 64,
        num_workers: int = 2,
        pin_memory: bool = True,
        feature_batch_size: int = 4096,
        channels_last: bool = False,
    ) -> None:
        self.name = name
        self.aggregation = aggregation
        self.entropy_scale = entropy_scale
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
            text_encoder = lambda texts: text_cache.encode(texts, backbone.encode_texts)  # noqa: E731
        module = ClassificationTask(
            backbone,
            num_classes=len(dataset.classes),
            aggregation=self.aggregation,
            entropy_scale=self.entropy_scale,
            text_encoder=text_encoder,
            channels_last=self.channels_last,
        )

        def build_text() -> DescriptionSet:
            return build(
                cfg.describe,
                classes=list(dataset.classes),
                native=dataset.native,
                class_ids=dataset.class_ids,
                _convert_="all",
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
            files=files_fingerprint(paths, content=cfg.cache.verify == "content") if paths else None,
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
