"""``python -m descbench.eval``: one evaluation (``-m`` for a Hydra multirun)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from descbench.errors import ConfigError, UserError

log = logging.getLogger("descbench")


@dataclass
class RunContext:
    """Where a job writes and how it is named (from Hydra's runtime, or given by a test)."""

    run_dir: Path
    name: str = "default"
    group: str | None = None
    multirun: bool = False
    logger: Any = None


def runtime_context(cfg: DictConfig) -> RunContext:
    """The job's output dir, name (its overrides) and group (the sweep dir) from Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return RunContext(run_dir=Path(cfg.paths.output_dir))
    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    return RunContext(
        run_dir=Path(hc.runtime.output_dir),
        name=hc.job.override_dirname or "default",
        group=Path(hc.sweep.dir).name if multirun else None,
        multirun=multirun,
    )


def check_distributed(cfg: DictConfig, context: RunContext) -> None:
    """Refuse DDP inside a Hydra multirun: Lightning re-launches the command line per rank."""
    strategy = str(cfg.trainer.get("strategy", "auto"))
    devices = cfg.trainer.get("devices", 1)
    many = devices not in (1, "1", [0]) or int(cfg.trainer.get("num_nodes", 1)) > 1
    if context.multirun and strategy.startswith("ddp") and many:
        raise ConfigError(
            "trainer=ddp cannot run inside a Hydra multirun (-m): each rank would re-launch the whole sweep; "
            "run each sweep point as its own command, or sweep with the submitit launcher, hydra/launcher=slurm (one DDP job per point)"
        )


def build_logger(cfg: DictConfig, context: RunContext):
    """The configured Lightning logger, or None (W&B offline without credentials, in the run dir)."""
    from hydra.utils import instantiate

    from descbench.tracking import redact, wandb_offline

    if cfg.get("logger") is None:
        return None
    target = str(cfg.logger.get("_target_", ""))
    extra: dict[str, Any] = {}
    if target.endswith("WandbLogger"):
        os.environ.setdefault("WANDB_QUIET", "true")  # keep the results table the last thing printed
        extra = {
            "save_dir": str(context.run_dir),
            "offline": wandb_offline(cfg.logger.get("offline", "auto")),
            "name": context.name,
            "group": context.group,
            "job_type": cfg.task.name,
        }
    elif target:
        extra = {"save_dir": str(context.run_dir)}
    params = {k: v for k, v in OmegaConf.to_container(cfg.logger, resolve=True).items() if k != "offline"}
    logger = instantiate({**params, **extra}, _recursive_=False)
    # The resolved config, secrets removed (rank 0 only; other ranks get a no-op).
    logger.log_hyperparams(redact(OmegaConf.to_container(cfg, resolve=True)))
    return logger


def evaluate(cfg: DictConfig, context: RunContext | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the configured task; returns ``(metrics, objects)``. Tests call this directly."""
    import lightning as L
    from hydra.utils import get_method

    context = context or runtime_context(cfg)
    check_distributed(cfg, context)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    context.run_dir.mkdir(parents=True, exist_ok=True)
    context.logger = build_logger(cfg, context)
    runner = get_method(cfg.task.runner)
    return runner(cfg, context)


def run_job(cfg: DictConfig, context: RunContext | None = None) -> dict[str, Any]:
    """``evaluate`` with the W&B run finished whatever happens, so one failed job does not poison a sweep."""
    try:
        metrics, _ = evaluate(cfg, context)
        return metrics
    finally:
        if "wandb" in sys.modules:
            import wandb

            if wandb.run is not None:
                wandb.finish()


def _user_errors() -> tuple[type[Exception], ...]:
    return (UserError,)


def _main(cfg: DictConfig) -> float | None:
    from hydra.errors import InstantiationException

    try:
        try:
            metrics = run_job(cfg)
        except InstantiationException as err:
            # A user error raised while building an object from the config arrives wrapped by Hydra.
            if isinstance(err.__cause__, _user_errors()):
                raise err.__cause__ from None
            raise
    except _user_errors() as err:
        # Errors raised in DataLoader workers arrive wrapped with a traceback: keep the message.
        message = str(err).strip().splitlines()[-1].split("Error: ", 1)[-1] if "Traceback" in str(err) else str(err)
        log.error("%s", message)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    value = metrics.get("top1", metrics.get("acc"))
    return None if value is None else float(value)


def main() -> None:
    from descbench.cli import prepare_argv

    prepare_argv()
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    from descbench.config import hydra_entry

    hydra_entry(_main, "eval")()


if __name__ == "__main__":
    main()
