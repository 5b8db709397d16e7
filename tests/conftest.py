"""Shared fixtures: Hydra compose with outputs in tmp_path, never downloads, W&B offline."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_eval(args: list[str], cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m descbench.eval ARGS`` in a subprocess, offline."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.setdefault("DESCBENCH_CACHE_DIR", str(cwd / "cache"))
    return subprocess.run(
        [sys.executable, "-m", "descbench.eval", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
