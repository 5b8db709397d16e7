"""A task defined outside descbench, as a plugin author would write one: its definition, spec, module and writer.

``brightness``: the share of images whose preprocessed pixels have a positive mean (a property the test can
compute itself). ``tests/toy_conf/task/toy.yaml`` selects it through Hydra's search path; nothing in
``descbench/`` names it.
"""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics import MeanMetric

from descbench.core.measures import Measure
from descbench.core.results import JobOutputs
from descbench.core.stats import interval_fields
from descbench.shell.config import build
from descbench.tasks.definition import TaskDefinition, register_task
from descbench.tasks.job_results import job_results, measure_rows, write_job
from descbench.tasks.runner import TaskJob

DEFINITION = register_task(
    TaskDefinition(
        name="toy",
        title="toy brightness",
        spec="tests.toy_task.ToySpec",
        primary="bright_share",
        grouping=("dataset", frozenset()),
        measures=(Measure("bright_share", "rate", "bright images", "higher", percent=True),),
    )
)


class ToyModule(L.LightningModule):
    """Logs the share of bright images as a torchmetrics object and keeps the per-image outcome."""

    def __init__(self) -> None:
        super().__init__()
        self.bright = MeanMetric()
        self.outcomes: list[torch.Tensor] = []

    def test_step(self, batch, batch_idx: int) -> None:
        images, _, _ = batch
        bright = (images.float().mean(dim=(1, 2, 3)) > 0).float()
        self.bright.update(bright)
        self.outcomes.append(bright.cpu())
        self.log("bright_share", self.bright, on_step=False, on_epoch=True, batch_size=len(images))


class ToySpec:
    """``task=toy``: its one option is the batch size."""

    def __init__(self, batch_size: int = 32) -> None:
        self.batch_size = batch_size

    def prepare(self, cfg, backbones, context) -> TaskJob:
        dataset = build(cfg.dataset.builder, transform=backbones[0].preprocess).limited(cfg.dataset.get("limit"))
        module = ToyModule()

        def write(metrics: dict[str, float]) -> dict:
            measured = {"bright_share": metrics["bright_share"]}
            measured.update(interval_fields({"bright_share": torch.cat(module.outcomes).numpy()}))
            results = job_results(cfg, context, DEFINITION.name, backbones, measured, {"dataset": dataset.name})
            outputs = JobOutputs(context.run_dir)
            write_job(context, results, outputs, measure_rows(results, DEFINITION.name))
            return results

        return TaskJob(module=module, images=dataset, batch_size=self.batch_size, num_workers=0, write_outputs=write)
