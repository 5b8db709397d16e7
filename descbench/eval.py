"""``python -m descbench.eval``: one evaluation (``-m`` for a Hydra multirun)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from descbench.core.errors import UserError

log = logging.getLogger("descbench")
#: what a failed job leaves in its dir (one line); the end of a sweep lists them
ERROR_FILE = "error.txt"


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


def build_logger(cfg: DictConfig, context: RunContext):
    """The configured Lightning logger, or None (W&B offline without credentials, in the run dir)."""
    from hydra.utils import instantiate

    from descbench.shell.tracking import redact, wandb_offline

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
            "job_type": task_of(cfg).name,
        }
    elif target:
        extra = {"save_dir": str(context.run_dir)}
    params = {k: v for k, v in OmegaConf.to_container(cfg.logger, resolve=True).items() if k != "offline"}
    logger = instantiate({**params, **extra}, _recursive_=False)
    # The resolved config, secrets removed (rank 0 only; other ranks get a no-op).
    logger.log_hyperparams(redact(OmegaConf.to_container(cfg, resolve=True)))
    return logger


def prepare_run_dir(run_dir: Path) -> None:
    """Create the run dir, or say in one line why it cannot be written.

    A dir used again (the same ``hydra.run.dir``) loses the ``results.json`` and ``error.txt`` of the earlier
    job first, so that what it holds after this job is this job's outcome, never an older one.
    """
    from lightning.pytorch.utilities import rank_zero_only

    from descbench.core.results import RESULTS_FILE

    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        if getattr(rank_zero_only, "rank", 0) == 0:
            if (run_dir / RESULTS_FILE).is_file():
                log.warning(
                    "run dir %s holds the results.json of an earlier job: removed, this job replaces it", run_dir
                )
            for name in (RESULTS_FILE, ERROR_FILE):
                (run_dir / name).unlink(missing_ok=True)
    except OSError as err:
        raise UserError(
            f"cannot write to the run dir {run_dir} ({err.strerror or err}): choose another with hydra.run.dir=..."
        ) from None


def evaluate(cfg: DictConfig, context: RunContext | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the configured task; returns ``(results, objects)``. Tests call this directly."""
    import lightning as L

    from descbench.shell.checks import check_config
    from descbench.tasks.runner import run_task

    context = context or runtime_context(cfg)
    check_config(cfg, multirun=context.multirun)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    prepare_run_dir(context.run_dir)
    context.logger = build_logger(cfg, context)
    return run_task(cfg, context)


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


def report_user_error(err: UserError, run_dir: Path | None) -> None:
    """``error: <message>`` on stderr and in the log; in a job dir also as ``error.txt``."""
    message = " ".join(str(err).split()) or type(err).__name__
    print(f"error: {message}", file=sys.stderr, flush=True)
    if run_dir is not None and run_dir.is_dir():
        try:
            from descbench.core.files import write_atomic

            write_atomic(run_dir / ERROR_FILE, message + "\n")
        except OSError:
            pass


def run_reporting(cfg: DictConfig, context: RunContext) -> tuple[int, dict[str, Any] | None]:
    """``run_job`` as the command line runs it: ``(0, results)``, or ``(2, None)`` after one ``error:`` line."""
    try:
        return 0, run_job(cfg, context)
    except UserError as err:
        report_user_error(err, context.run_dir)
        return 2, None


def _main(cfg: DictConfig) -> float | None:
    context = runtime_context(cfg)
    code, results = run_reporting(cfg, context)
    if code:
        if context.multirun:
            return None  # the sweep goes on; FailedJobs lists this job at its end
        sys.exit(code)
    value = results.get(task_of(cfg).primary)  # what a Hydra sweeper optimises
    return None if value is None else float(value)


def task_of(cfg: DictConfig):
    """The definition of the task ``cfg.task`` builds."""
    from descbench.tasks.definition import definition_of

    return definition_of(str(cfg.task._target_))


class FailedJobs(Callback):
    """At the end of a sweep: the jobs that failed, each with its one-line error; exit code 2 if any."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        failed = sorted(sweep_dir.rglob(ERROR_FILE), key=lambda p: str(p))
        if not failed:
            return
        lines = [f"{len(failed)} job(s) of the sweep failed:"]
        for path in failed:
            lines.append(f"  {path.parent}: {path.read_text().strip()}")
        print("\n".join(lines), file=sys.stderr, flush=True)
        sys.exit(2)


#: OpenMP's wait policy when the user sets none: idle OpenMP threads sleep instead of spinning, so that the
#: data loader's worker processes keep the CPU cores while the main process waits for their next batch. On 2
#: CPU cores a spinning main process made a 3,000-image encoding pass 1.3x slower (a whole 14-job tiny-model
#: sweep 10.0-11.6 s against 13.0-13.3 s); a loop of many small OpenMP regions without loader workers runs
#: slower with it (the naive benchmark loop: 9.6-9.8 s per job against 7.3-7.7 s). It changes no number.
#: Read by OpenMP when torch loads, so it is set before anything imports torch; export OMP_WAIT_POLICY to choose.
OMP_WAIT_POLICY = "PASSIVE"


def main() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    from descbench.shell.config import run_entry

    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    run_entry(_main, "eval")


if __name__ == "__main__":
    main()
