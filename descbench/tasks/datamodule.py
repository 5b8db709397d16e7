"""Evaluation data loading: exact under DDP (no padded or repeated samples)."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset


class EvalDataModule(L.LightningDataModule):
    """Serves one test set; under DDP each rank gets a disjoint, unpadded share."""

    def __init__(
        self, dataset: Dataset, batch_size: int = 64, num_workers: int = 0, pin_memory: bool = False, collate_fn=None
    ) -> None:
        super().__init__()
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.collate_fn = collate_fn

    def test_dataloader(self) -> DataLoader:
        sampler = None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # Lightning's default DistributedSampler pads with repeated samples, which changes
            # accuracy; this one gives rank r the samples r, r+W, r+2W, ... and nothing more.
            sampler = UnrepeatedDistributedSampler(self.dataset, shuffle=False)
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=False,
            collate_fn=self.collate_fn,
        )


def gather_rows(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Concatenate per-rank tensors of unequal length on every rank (identity without DDP)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensors
    from torchmetrics.utilities.distributed import gather_all_tensors

    return {k: torch.cat(gather_all_tensors(v)) for k, v in tensors.items()}
