"""One skeleton for every task: backbones, the task's job, cached features or images, ``Trainer.test``, outputs.

A task is a small spec (``conf/task/<name>.yaml`` → a class with a ``prepare`` method) that hands the
runner a :class:`TaskJob`: its LightningModule, the items the loop iterates, how its features are
cached, how its text side is built and how its outputs are written. The runner owns the order:

1. the text side (descriptions) is built before ``Trainer.test`` by rank 0 alone (it may call a language
   model); in a multi-device run it is handed to the other ranks through a file in the run dir, so every
   rank scores against the very same texts (a fallback that is never cached included). Under Lightning's
   DDP launcher the other ranks start only when rank 0 reaches ``Trainer.test``; under torchrun/SLURM
   they wait for the file;
2. cached features replace the images when every file the job needs is there (no image is opened);
3. ``Trainer.test`` runs the module (metrics are torchmetrics objects, exact under DDP);
4. rank 0 writes the missing cache files and the job's outputs.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from torch.utils.data import Dataset

from descbench.core.backbone import Backbone
from descbench.core.errors import ConfigError, DatasetError
from descbench.core.files import write_atomic
from descbench.shell.checks import multi_device
from descbench.shell.config import build
from descbench.tasks.datamodule import EvalDataModule, SurfaceSampleErrors, skipping_ghosts

log = logging.getLogger("descbench")
#: how long ranks other than 0 wait for rank 0's descriptions when all ranks start together (torchrun, SLURM)
TEXT_WAIT_SECONDS = 3600.0


class CachedFeatures(Protocol):
    """How a task's features are kept on disk between jobs."""

    def lookup(self) -> Dataset | None:
        """The loop's items built from cached features when every file is there, else None."""

    @property
    def missing(self) -> bool:
        """Whether this job computes features that a cache file should keep."""

    def save(self, module: L.LightningModule) -> None:
        """Write the missing files from what ``module`` kept (rank 0, after the test loop)."""


@dataclass
class TaskJob:
    """What a task hands the runner; everything else is the runner's."""

    module: L.LightningModule
    images: Dataset
    batch_size: int
    num_workers: int
    write_outputs: Callable[[dict[str, float]], dict[str, Any]]
    pin_memory: bool = True
    collate_fn: Callable | None = None
    features: CachedFeatures | None = None
    feature_kind: str = "features"
    feature_batch_size: int | None = None
    build_text: Callable[[], Any] | None = None
    use_text: Callable[[Any], None] | None = None
    objects: dict[str, Any] = field(default_factory=dict)


class TaskSpec(Protocol):
    """A task config (``conf/task/*.yaml``) once instantiated."""

    name: str

    def prepare(self, cfg: DictConfig, backbones: list[Backbone], context: Any) -> TaskJob: ...


def build_backbones(cfg: DictConfig) -> list[Backbone]:
    """``cfg.backbone`` and the task's ``extra_backbones`` (scores are summed over them where the task allows)."""
    extra = cfg.task.get("extra_backbones") or []
    return [build(cfg.backbone)] + [build(b) for b in extra]


TEXT_FILE = ".text_side.pkl"


def build_text_side(job: TaskJob, cfg: DictConfig, run_dir: Path) -> None:
    """Rank 0 builds the text side; other ranks load it from the file rank 0 wrote (our own pickle)."""
    if job.build_text is None:
        return
    shared = Path(run_dir) / TEXT_FILE
    if getattr(rank_zero_only, "rank", 0) == 0:
        text = job.build_text()
        if multi_device(cfg):
            write_atomic(shared, pickle.dumps(text))
        job.use_text(text)
        return
    deadline = time.monotonic() + TEXT_WAIT_SECONDS
    while not shared.is_file():
        if time.monotonic() > deadline:
            raise ConfigError(
                f"rank {rank_zero_only.rank} waited {TEXT_WAIT_SECONDS:.0f} s for rank 0's texts ({shared})"
            )
        time.sleep(2.0)
    job.use_text(pickle.loads(shared.read_bytes()))


def run_task(cfg: DictConfig, context: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``cfg.task`` end to end; returns ``(results, objects)`` (results: what ``results.json`` holds on rank 0)."""
    spec: TaskSpec = build(cfg.task, _recursive_=False)
    if hasattr(spec, "check"):  # what the task refuses in the config, before any model loads
        spec.check(cfg)
    backbones = build_backbones(cfg)
    job = spec.prepare(cfg, backbones, context)
    build_text_side(job, cfg, context.run_dir)
    cached = job.features.lookup() if job.features is not None else None
    if job.features is None:
        log.info("%s: computing (no feature cache for this job)", job.feature_kind)
    else:
        log.info("%s: %s", job.feature_kind, "cached" if cached is not None else "computing")
    if cached is not None:
        data, batch_size, workers = cached, job.feature_batch_size or job.batch_size, 0
    else:
        data, batch_size, workers = job.images, job.batch_size, job.num_workers
    if len(data) == 0:
        raise DatasetError(
            f"dataset {cfg.dataset.get('name')!r} has nothing to evaluate: check its files and dataset.limit"
        )
    datamodule = EvalDataModule(
        data, batch_size=batch_size, num_workers=workers, pin_memory=job.pin_memory, collate_fn=job.collate_fn
    )
    # a rank whose share is empty (fewer samples than processes) steps over one ghost batch: it still runs
    # every hook and takes part in every sync
    job.module.test_step = skipping_ghosts(job.module.test_step)
    trainer = build(cfg.trainer, logger=context.logger or False, callbacks=[SurfaceSampleErrors()])
    logged = trainer.test(job.module, datamodule=datamodule, verbose=False)[0]
    metrics = {k: float(v) for k, v in logged.items()}
    objects = {
        "module": job.module,
        "backbones": backbones,
        "backbone": backbones[0],
        "trainer": trainer,
        **job.objects,
    }
    if trainer.is_global_zero:
        (Path(context.run_dir) / TEXT_FILE).unlink(missing_ok=True)
        if job.features is not None and job.features.missing:
            job.features.save(job.module)
        metrics = job.write_outputs(metrics)
    return metrics, objects
