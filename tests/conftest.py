"""Shared fixtures: Hydra compose with outputs in tmp_path, never downloads, W&B offline."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def compose_config(overrides: list[str], tmp_path: Path):
    """The eval config as the command line would compose it, writing under ``tmp_path``."""
    from descbench.shell.config import compose_config

    return compose_config(
        ["logger=none", f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'run'}", *overrides]
    )


@pytest.fixture
def compose_cfg(tmp_path):
    return lambda overrides=(): compose_config(list(overrides), tmp_path)


# the tests that start multi-process runs: one xdist worker runs them, one after another (no two gloo runs at once)
MULTI_PROCESS = pytest.mark.xdist_group("ddp")


def eval_env(cwd: Path, env: dict | None = None) -> dict[str, str]:
    """The environment of a ``python -m descbench.eval`` subprocess: offline, this checkout, a cache under ``cwd``."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.setdefault("DESCBENCH_CACHE_DIR", str(cwd / "cache"))
    return full_env


def run_eval(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m descbench.eval ARGS`` in a subprocess, offline."""
    return subprocess.run(
        [sys.executable, "-m", "descbench.eval", *args],
        cwd=cwd,
        env=eval_env(cwd, env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_ddp_eval(args: list[str], cwd: Path, run_dir: Path, env: dict | None = None, timeout: int = 300):
    """``run_eval`` for a multi-process run, in its own process group, with one retry if it hangs.

    A 2-process gloo run on a loaded 2-core CI machine has hung once in many runs, both ranks past
    "Initializing distributed" (not reproduced here in 12 runs under load). On a hang every process of
    the run (rank 0 and the rank it launched) dumps its Python stacks (faulthandler on SIGABRT), the group is
    killed, the stacks are reported as a warning, and the run starts again in a fresh run dir. A second hang
    fails the test with both dumps.
    """
    full_env = eval_env(cwd, {"PYTHONFAULTHANDLER": "1", **(env or {})})
    command = [sys.executable, "-m", "descbench.eval", *args, f"hydra.run.dir={run_dir}"]
    dumps = []
    for attempt in (1, 2):
        shutil.rmtree(run_dir, ignore_errors=True)
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout)
            return subprocess.CompletedProcess(command, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGABRT)  # every rank prints its threads' stacks, then stops
            time.sleep(5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            dumps.append(f"attempt {attempt} hung for {timeout} s; stderr tail:\n{err[-6000:]}")
            warnings.warn(dumps[-1], stacklevel=2)
    raise AssertionError("\n\n".join(dumps))
