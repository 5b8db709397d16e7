"""Referring expressions with visual prompts as a LightningModule (the core lives in ``descbench.core.marking``).

The test set is the list of images, each item carrying all its expressions and candidates: the
DataLoader workers mark and preprocess every (candidate, visual prompt) per backbone, ``test_step``
encodes them in one batch per (image, backbone), scores every expression of the image and picks
its candidate (seeded tie-break keyed by the expression's index, so DDP changes nothing).

With ``cache.features`` the candidate features are kept on disk per (backbone, visual prompt): a
later job over the same data (another template, ``subtract``, seed, or an ensemble of cached prompts)
reads them instead of opening and encoding any image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from torchmetrics import MeanMetric

from descbench.core.backbone import Backbone
from descbench.core.description_text import check_template
from descbench.core.feature_cache import CandidateFeatureCache, TextFeatureCache, digest, files_fingerprint
from descbench.core.marking.engine import (
    DEFAULT_GEOMETRY,
    ImageGroup,
    RecPrediction,
    RelationBanks,
    TextBank,
    draw_expression_negatives,
    encode_group,
    group_by_image,
    make_prediction,
    predict_group,
    prepare_group,
    resolve_group,
    score_group,
)
from descbench.core.marking.expressions import RecDataset
from descbench.core.marking.geometry import PAD_FILL, Geometry
from descbench.core.marking.relations import RESOLUTION_RULES, check_relations_mode
from descbench.core.marking.visual_prompts import VISUAL_PROMPTS, PromptSpec, VisualPromptError, parse_prompt_specs
from descbench.shell.config import build
from descbench.tasks.datamodule import gather_rows
from descbench.tasks.runner import TaskJob

log = logging.getLogger("descbench")


class Preprocessor:
    """What a DataLoader worker needs of a backbone: its preprocessing and input size (no weights)."""

    def __init__(self, backbone: Backbone) -> None:
        self.preprocess = backbone.preprocess
        self.image_size = backbone.image_size


class RecImageDataset(Dataset):
    """Item ``i``: image group ``i`` with one marked, preprocessed batch ``[P * C, 3, H, W]`` per backbone."""

    def __init__(
        self,
        dataset: RecDataset,
        prompts: Sequence[PromptSpec],
        backbones: Sequence[Backbone],
        geometry: Geometry = DEFAULT_GEOMETRY,
    ) -> None:
        self.dataset = dataset
        self.groups = group_by_image(dataset.expressions)
        self.prompts = list(prompts)
        self.preprocessors = [Preprocessor(b) for b in backbones]
        self.geometry = geometry

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, index: int) -> dict[str, Any]:
        group = self.groups[index]
        image = self.dataset.load_image(group.image_id)
        inputs = prepare_group(image, group.boxes, self.prompts, self.preprocessors, self.geometry)
        return {"group": index, "inputs": inputs}


class RecFeatureDataset(Dataset):
    """Item ``i``: image group ``i`` with its cached features ``[P, C, D]`` per backbone (no image is opened)."""

    def __init__(self, features: Sequence[Tensor], offsets: Tensor) -> None:
        self.features = list(features)  # per backbone [P, N, D], rows = every candidate in group order
        self.offsets = offsets.long()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> dict[str, Any]:
        start, end = int(self.offsets[index]), int(self.offsets[index + 1])
        # contiguous, as the forward's output is: the scores are then bit-identical to a cold run
        return {"group": index, "features": [f[:, start:end].contiguous() for f in self.features]}


def group_offsets(groups: Sequence[ImageGroup]) -> Tensor:
    """``[G + 1]`` row offsets of each group's candidates in the flat, group-ordered layout."""
    counts = torch.tensor([len(g.boxes) for g in groups], dtype=torch.long)
    return torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])


def collate_groups(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images have different candidate counts: a batch is a list of groups."""
    return items


class RecTask(L.LightningModule):
    """Scores batches of image groups; accuracy overall and per split as torchmetrics objects."""

    def __init__(
        self,
        backbones: Sequence[Backbone],
        dataset: RecDataset,
        groups: Sequence[ImageGroup],
        prompts: Sequence[PromptSpec],
        template: str = "a photo of {expression}",
        subtract: bool = False,
        negatives: int = 10,
        seed: int = 0,
        text_encoders: Sequence[Callable[[list[str]], torch.Tensor]] | None = None,
        keep_features: bool = False,
        lowercase: bool = False,
        relations: str = "none",
        geometry_key: str = "squash",
    ) -> None:
        super().__init__()
        self.lowercase = lowercase
        self.geometry_key = geometry_key
        self.relations = check_relations_mode(relations)
        self.relation_banks: RelationBanks | None = None
        self.backbones = nn.ModuleList(backbones)
        self.dataset = dataset
        self.groups = list(groups)
        self.prompts = list(prompts)
        self.template = template
        self.subtract = subtract
        self.negatives = negatives
        self.seed = seed
        # drawn once, before any encoding (too many asked for a split is an error now, not after the images)
        self.negative_index = draw_expression_negatives(dataset.expressions, negatives, seed) if subtract else None
        self.text_encoders = text_encoders
        self.keep_features = keep_features
        self.splits = dataset.splits
        self.accuracy = MeanMetric()
        # a list, not a ModuleDict keyed by split: a split may be called "train", a Module attribute
        self.split_accuracy = nn.ModuleList([MeanMetric() for _ in self.splits])
        # with relations: the same accuracies of CLIP's own picks (the resolver's baseline)
        self.baseline_accuracy = MeanMetric()
        self.split_baseline_accuracy = nn.ModuleList([MeanMetric() for _ in self.splits])
        self.resolutions: dict[int, dict[str, Any]] = {}
        self.bank: TextBank | None = None
        self._rows: dict[str, list[torch.Tensor]] = {}
        self.predictions: list[RecPrediction] | None = None
        # with keep_features: per backbone [N, P, D], every candidate of every group in group order (all ranks)
        self.candidate_features: list[Tensor] | None = None
        self._gather_features = False
        self._features: list[list[Tensor]] = []
        self._feature_groups: list[Tensor] = []

    @torch.no_grad()
    def on_test_start(self) -> None:
        # The text side once, on the device: every expression's text and its negatives, per backbone.
        self.bank = TextBank(
            self.dataset.expressions,
            list(self.backbones),
            self.template,
            self.negative_index if self.subtract else 0,
            self.seed,
            encoders=self.text_encoders,
            device=self.device,
            lowercase=self.lowercase,
        )
        if self.relations == "rules":
            self.relation_banks = RelationBanks(
                self.dataset.expressions,
                list(self.backbones),
                self.template,
                encoders=self.text_encoders,
                device=self.device,
                lowercase=self.lowercase,
            )
        self._rows = {k: [] for k in ("index", "chosen", "score", "baseline", "rule")}
        # every rank takes part in the gather if any rank computes (a file written between two ranks'
        # look-ups must not leave one rank waiting in a collective the others skip)
        self._gather_features = self.trainer.strategy.reduce_boolean_decision(self.keep_features, all=False)
        self._features = [[] for _ in self.backbones]
        self._feature_groups = []

    def test_step(self, batch: list[dict[str, Any]], batch_idx: int) -> None:
        expressions = self.dataset.expressions
        for item in batch:
            group = self.groups[item["group"]]
            if "features" in item:  # cached: [P, C, D] per backbone
                features = [f.to(self.device) for f in item["features"]]
            else:
                features = encode_group(item["inputs"], list(self.backbones), len(self.prompts))
            if self._gather_features:  # rows = candidates: [C, P, D]
                for kept, f in zip(self._features, features):
                    kept.append(f.transpose(0, 1).contiguous())
                self._feature_groups.append(torch.full((len(group.boxes),), item["group"], device=self.device))
            scores = score_group(group, features, self.bank)
            if self.relation_banks is None:
                predictions = predict_group(group, scores, expressions, self.seed)
                baselines = [p.chosen_index for p in predictions]
                rules = [0] * len(predictions)
            else:
                resolved = resolve_group(group, features, scores, expressions, self.relation_banks, self.seed)
                predictions = [p for p, _ in resolved]
                baselines = [r.baseline for _, r in resolved]
                rules = [RESOLUTION_RULES.index(r.rule) for _, r in resolved]
                baseline_correct = torch.tensor(
                    [
                        float(make_prediction(p.index, expressions[p.index], b, 0.0).correct)
                        for p, b in zip(predictions, baselines)
                    ],
                    device=self.device,
                )
                self._update_split_metrics(
                    self.baseline_accuracy, self.split_baseline_accuracy, predictions, baseline_correct
                )
            correct = torch.tensor([float(p.correct) for p in predictions], device=self.device)
            self._update_split_metrics(self.accuracy, self.split_accuracy, predictions, correct)
            self._rows["index"].append(torch.tensor([p.index for p in predictions], device=self.device))
            self._rows["chosen"].append(torch.tensor([p.chosen_index for p in predictions], device=self.device))
            self._rows["score"].append(torch.tensor([p.score for p in predictions], device=self.device))
            self._rows["baseline"].append(torch.tensor(baselines, device=self.device))
            self._rows["rule"].append(torch.tensor(rules, device=self.device))
        self.log("acc", self.accuracy, on_step=False, on_epoch=True, batch_size=len(batch))
        for split, metric in zip(self.splits, self.split_accuracy):  # every rank logs every split (synced at epoch end)
            self.log(f"acc.{split}", metric, on_step=False, on_epoch=True, batch_size=len(batch))
        if self.relation_banks is not None:
            self.log("acc_no_relations", self.baseline_accuracy, on_step=False, on_epoch=True, batch_size=len(batch))
            for split, metric in zip(self.splits, self.split_baseline_accuracy):
                self.log(f"acc_no_relations.{split}", metric, on_step=False, on_epoch=True, batch_size=len(batch))

    def _update_split_metrics(
        self, overall: MeanMetric, per_split: nn.ModuleList, predictions, correct: Tensor
    ) -> None:
        overall.update(correct)
        splits = [p.split for p in predictions]
        for split in dict.fromkeys(splits):
            mask = torch.tensor([s == split for s in splits], device=self.device)
            per_split[self.splits.index(split)].update(correct[mask])

    def on_test_epoch_end(self) -> None:
        # Per-expression rows from every rank, in dataset order (no padding: each expression once).
        rows = gather_rows(
            {k: torch.cat(v) if v else torch.empty(0, device=self.device) for k, v in self._rows.items()}
        )
        order = torch.argsort(rows["index"])
        rows = {k: v[order].cpu() for k, v in rows.items()}
        expressions = self.dataset.expressions
        self.predictions = [
            make_prediction(i, expressions[i], chosen, score)
            for i, chosen, score in zip(
                rows["index"].long().tolist(), rows["chosen"].long().tolist(), rows["score"].tolist()
            )
        ]
        self.resolutions = {
            i: {"baseline": b, "rule": RESOLUTION_RULES[r], "changed": b != c}
            for i, b, r, c in zip(
                rows["index"].long().tolist(),
                rows["baseline"].long().tolist(),
                rows["rule"].long().tolist(),
                rows["chosen"].long().tolist(),
            )
        }
        self._rows = {}
        if self._gather_features:
            self.candidate_features = self._gather_candidate_features()

    def _gather_candidate_features(self) -> list[Tensor]:
        """Every rank's kept candidate features, in group order: per backbone ``[N, P, D]`` on the CPU."""
        flat = {
            "group": torch.cat(self._feature_groups) if self._feature_groups else torch.empty(0, device=self.device)
        }
        for b, (kept, text) in enumerate(zip(self._features, self.bank.features)):
            empty = torch.empty(0, len(self.prompts), text.shape[-1], device=self.device)
            flat[f"features.{b}"] = torch.cat(kept) if kept else empty
        flat = gather_rows(flat)
        # a group's candidates are contiguous on one rank: a stable sort by group keeps their order
        order = torch.argsort(flat["group"], stable=True)
        self._features, self._feature_groups = [], []
        return [flat[f"features.{b}"][order].cpu() for b in range(len(self.backbones))]


def build_prompt_specs(visual_prompt: Mapping[str, Any] | Sequence[Any] | None) -> list[PromptSpec]:
    """The ``visual_prompt`` config (``{circle: {thickness: 2}, crop: {}}``: an ensemble) as specs."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(visual_prompt, (DictConfig, ListConfig)):
        visual_prompt = OmegaConf.to_container(visual_prompt, resolve=True)
    if not visual_prompt:
        raise VisualPromptError(
            "task=rec needs a visual prompt: visual_prompt=NAME, NAME one of "
            f"{', '.join(VISUAL_PROMPTS)} (a list is an ensemble: visual_prompt=[circle,crop]); "
            "a NAME with no file in conf/visual_prompt/ leaves the group empty"
        )
    if isinstance(visual_prompt, Mapping):
        return parse_prompt_specs([{"name": key, **(options or {})} for key, options in visual_prompt.items()])
    return parse_prompt_specs(visual_prompt)


class RecTaskSpec:
    """``task=rec``: referring expressions with visual prompts (SPEC §4); the options of ``conf/task/rec.yaml``."""

    def __init__(
        self,
        name: str = "rec",
        template: str = "a photo of {expression}",
        subtract: bool = False,
        negatives: int = 10,
        extra_backbones: Sequence[Any] = (),
        batch_size: int = 8,
        num_workers: int = 2,
        pin_memory: bool = True,
        num_examples: int = 8,
        lowercase: bool = False,
        image_processing: str = "squash",
        pad_fill: Sequence[int] = PAD_FILL,
        relations: str = "none",
    ) -> None:
        if "{expression}" not in str(template):
            raise VisualPromptError(f"task.template={template!r} must contain {{expression}}")
        check_template(template, fields=("expression",), required="expression", key="task.template")
        self.name = name
        self.template, self.subtract, self.negatives = str(template), bool(subtract), int(negatives)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.num_examples = num_examples
        self.lowercase = bool(lowercase)
        self.geometry = Geometry(image_processing, tuple(pad_fill))
        self.relations = check_relations_mode(relations)

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        """Visual prompts, the data set, the module, the marked-candidate feature cache."""
        from descbench.tasks.rec.outputs import write_rec_outputs

        prompts = build_prompt_specs(cfg.get("visual_prompt"))
        dataset = build(cfg.dataset.builder, _convert_="all").limited(cfg.dataset.get("limit"))
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
            write_outputs=lambda metrics: write_rec_outputs(cfg, context, module, dataset, prompts, metrics),
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
        files = files_fingerprint(paths, content=cfg.cache.verify == "content") if paths else None
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
