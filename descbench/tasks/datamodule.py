"""Evaluation data loading: exact under DDP (no padded or repeated samples), user errors surfaced in one line.

A user error raised while a DataLoader worker reads a sample (a corrupt image, a bad box) would reach
the main process as a traceback text; instead the worker hands over a :class:`FailedSample` carrying
the one-line message, and :class:`SurfaceSampleErrors` raises it as the original error class in the
main process, where the entry point prints it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset
from torch.utils.data import default_collate as torch_default_collate

from descbench.core.errors import UserError


@dataclass
class FailedSample:
    """What a worker returns instead of a sample whose reading raised a :class:`UserError`."""

    error_type: type
    message: str

    def reraise(self) -> None:
        raise self.error_type(self.message)


class _Guarded(Dataset):
    """``dataset[i]``, or a :class:`FailedSample` when reading it raises a user error."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        if index == GHOST:
            return GHOST
        try:
            return self.dataset[index]
        except UserError as err:
            return FailedSample(type(err), str(err))


class _GuardedCollate:
    """The batch, or the first :class:`FailedSample` in it (picklable for worker processes)."""

    def __init__(self, collate: Callable | None) -> None:
        self.collate = collate or torch_default_collate

    def __call__(self, items: list[Any]) -> Any:
        for item in items:
            if isinstance(item, FailedSample) or (isinstance(item, int) and item == GHOST):
                return item
        return self.collate(items)


def skipping_ghosts(test_step: Callable[..., Any]) -> Callable[..., Any]:
    """``test_step`` that does nothing for the :data:`GHOST` batch of a rank with an empty share."""

    def step(batch: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(batch, int) and batch == GHOST:
            return None
        return test_step(batch, *args, **kwargs)

    return step


class SurfaceSampleErrors(L.Callback):
    """Raises a :class:`FailedSample`'s error in the main process, before the batch reaches ``test_step``."""

    def on_test_batch_start(self, trainer, pl_module, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        if isinstance(batch, FailedSample):
            batch.reraise()


#: what a rank whose share is empty iterates over instead of a sample (see :class:`ShareSampler`)
GHOST = -1


class ShareSampler(Sampler[int]):
    """Rank ``rank`` of ``world`` gets the samples ``rank, rank + world, ...`` and nothing more: disjoint,
    unpadded shares (Lightning's default distributed sampler pads with repeated samples, which changes
    accuracy). A share that would be empty (a set smaller than the world: 1 sample on 2 processes) is one
    :data:`GHOST` item instead, which the runner's loop skips: the rank still runs every hook and takes part
    in every sync, and no sample counts twice."""

    def __init__(self, size: int, rank: int, world: int) -> None:
        self.share = range(rank, size, world)

    def __iter__(self):
        return iter(self.share if len(self.share) else [GHOST])

    def __len__(self) -> int:
        return max(1, len(self.share))


class TensorBatches(Dataset):
    """A :class:`TensorDataset` (cached features) served one batch per item: batch ``k`` of a rank's share is
    one slice of each tensor, the very samples :class:`ShareSampler` and a DataLoader of ``batch_size`` would
    put in it, in the same order. Indexing and collating sample by sample costs seconds per job on 50,000
    samples. A rank whose share is empty gets one :data:`GHOST` item, as with the sampler."""

    def __init__(self, data: TensorDataset, batch_size: int, rank: int = 0, world: int = 1) -> None:
        self.tensors = data.tensors
        self.share = range(rank, len(data), world)
        self.batch_size = batch_size

    def __len__(self) -> int:
        return max(1, -(-len(self.share) // self.batch_size))

    def __getitem__(self, k: int) -> Any:
        if not len(self.share):
            return GHOST
        rows = self.share[k * self.batch_size : (k + 1) * self.batch_size]
        if rows.step == 1:
            return tuple(t[rows.start : rows.stop] for t in self.tensors)
        return tuple(t[rows.start : rows.stop : rows.step].contiguous() for t in self.tensors)


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
        world, rank = 1, 0
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
            sampler = ShareSampler(len(self.dataset), rank, world)
        if isinstance(self.dataset, TensorDataset) and self.collate_fn is None:
            # tensors in memory: sliced a batch at a time, in this process
            return DataLoader(TensorBatches(self.dataset, self.batch_size, rank, world), batch_size=None)
        return DataLoader(
            _Guarded(self.dataset),
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=False,
            collate_fn=_GuardedCollate(self.collate_fn),
        )


def gather_rows(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Concatenate per-rank tensors of unequal length on every rank (identity without DDP)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return tensors
    from torchmetrics.utilities.distributed import gather_all_tensors

    return {k: torch.cat(gather_all_tensors(v)) for k, v in tensors.items()}


class RowCollector:
    """Per-sample rows of one test loop, kept the same way by every task: appended per batch, concatenated,
    gathered from every rank (uneven shares, no padding), ordered by one column, moved to the CPU.

    ``columns``: name -> ``(trailing shape, dtype)``; a rank that saw no batch (a 1-sample set on 2
    processes) still takes part in the gather with empty rows of those shapes.
    """

    def __init__(self, columns: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> None:
        self.columns = dict(columns)
        self.rows: dict[str, list[torch.Tensor]] = {name: [] for name in self.columns}

    def add(self, **tensors: torch.Tensor) -> None:
        """One batch's rows (every column, the same number of rows)."""
        for name, value in tensors.items():
            self.rows[name].append(value)

    def collect(self, device: torch.device, order_by: str, stable: bool = False) -> dict[str, torch.Tensor]:
        """Every rank's rows, sorted by ``order_by`` (``stable``: rows that tie keep their gathered order)."""
        local = {}
        for name, (shape, dtype) in self.columns.items():
            kept = self.rows[name]
            local[name] = torch.cat(kept) if kept else torch.empty((0, *shape), dtype=dtype, device=device)
        self.rows = {name: [] for name in self.columns}
        rows = gather_rows(local)
        order = torch.argsort(rows[order_by], stable=stable)
        return {name: value[order].cpu() for name, value in rows.items()}
