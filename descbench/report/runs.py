"""Read a run or multirun dir: every ``results.json``, and every job that has none (failed or never ran)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

RESULTS = "results.json"
# Hydra run outputs that are never job dirs and can be large.
_SKIP_DIRS = {"wandb", "cache", "__pycache__"}


@dataclass
class Run:
    """One job's results and where they came from (``dir`` relative to the report root)."""

    dir: str
    results: dict[str, Any]


@dataclass
class MissingJob:
    """A job dir without results, or a sweep point without a job dir."""

    where: str
    overrides: str
    reason: str


def natural_key(text: str) -> list[Any]:
    """``2`` before ``10``: numbered job dirs in their sweep order."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", text)]


def _rel(path: Path, root: Path) -> str:
    rel = os.path.relpath(path, root)
    return "." if rel == "." else Path(rel).as_posix()


def _walk(root: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(results.json files, Hydra job dirs, multirun.yaml files) under ``root``, in natural order."""
    results, jobs, sweeps = [], [], []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        if ".hydra" in dirs:
            jobs.append(here)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in _SKIP_DIRS]
        if RESULTS in files:
            results.append(here / RESULTS)
        if "multirun.yaml" in files:
            sweeps.append(here / "multirun.yaml")
    order = lambda p: natural_key(_rel(p, root))  # noqa: E731
    return sorted(results, key=order), sorted(jobs, key=order), sorted(sweeps, key=order)


def _job_overrides(job_dir: Path) -> list[str] | None:
    path = job_dir / ".hydra" / "overrides.yaml"
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return [str(item) for item in loaded] if isinstance(loaded, list) else None


def _canonical(overrides: Iterable[str]) -> frozenset[tuple[str, str]] | None:
    """Overrides as {(key, value)} so that ``x=True`` (a sweep's expansion) equals ``x=true`` (the job's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    items = {}
    try:
        for override in parser.parse_overrides(list(overrides)):
            items[override.get_key_element()] = json.dumps(override.value(), sort_keys=True, default=str)
    except Exception:  # an override Hydra cannot parse: no match rather than a crash
        return None
    return frozenset(items.items())


def _hydra_str(value: Any, override_type: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return override_type._get_value_element_as_str(value)


def expected_sweep_points(multirun_yaml: Path) -> list[list[str]]:
    """Every job a sweep asked for, in job-number order, as its list of overrides (Hydra's basic sweeper)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Override

    from descbench.shell.cli import expand_ranges

    config = yaml.safe_load(multirun_yaml.read_text(encoding="utf-8")) or {}
    hydra_cfg = config.get("hydra") or {}
    params = (hydra_cfg.get("sweeper") or {}).get("params") or {}
    task = (hydra_cfg.get("overrides") or {}).get("task") or []
    arguments = [f"{key}={value}" for key, value in params.items()] + expand_ranges([str(t) for t in task])
    axes: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ValueError(f"cannot list the points of the sweep {key} (not a discrete sweep)")
            # Hydra's own spelling of each value (``true``, not Python's ``True``), as the job's overrides.yaml has it
            axes[key] = [f"{key}={_hydra_str(value, Override)}" for value in override.sweep_iterator()]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    points: list[list[str]] = [[]]
    for values in axes.values():
        points = [point + [value] for point in points for value in values]
    return points


def load_runs(root: Path) -> tuple[list[Run], list[MissingJob]]:
    """Every ``results.json`` under ``root``, and every job that has none (failed, or never ran)."""
    result_files, job_dirs, sweep_files = _walk(root)
    runs: list[Run] = []
    missing: list[MissingJob] = []
    for path in result_files:
        where = _rel(path.parent, root)
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(results, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            overrides = ",".join(_job_overrides(path.parent) or [])
            missing.append(MissingJob(where, overrides, f"unreadable {RESULTS}: {err}"))
            continue
        runs.append(Run(where, results))
    done = {_rel(path.parent, root) for path in result_files}
    for job in job_dirs:
        if _rel(job, root) not in done:
            overrides = ",".join(_job_overrides(job) or [])
            missing.append(MissingJob(_rel(job, root), overrides, f"no {RESULTS} (the job failed or is still running)"))
    for sweep_file in sweep_files:
        missing.extend(_missing_sweep_points(sweep_file, job_dirs, root))
    return runs, missing


def _missing_sweep_points(sweep_file: Path, job_dirs: Sequence[Path], root: Path) -> list[MissingJob]:
    sweep_dir = sweep_file.parent
    where = _rel(sweep_dir, root)
    try:
        points = expected_sweep_points(sweep_file)
    except Exception as err:  # a sweep we cannot expand is reported, never a crash
        return [MissingJob(where, "", f"could not list the sweep points of {sweep_file.name}: {err}")]
    present = set()
    for job in job_dirs:
        if job != sweep_dir and sweep_dir in job.parents:
            overrides = _job_overrides(job)
            if overrides is not None:
                present.add(_canonical(overrides))
    return [
        MissingJob(
            f"job #{number}" if where == "." else f"{where} job #{number}",
            ",".join(point),
            "no job dir (the sweep point never ran)",
        )
        for number, point in enumerate(points)
        if _canonical(point) not in present
    ]


def load_run_config(run_dir: Path) -> Any:
    """The config a job ran with (its ``.hydra/config.yaml``), resolvable outside that job: ``${hydra:...}``
    interpolations (data and cache paths) read the job's own ``.hydra/hydra.yaml``. Raises ``ValueError`` saying
    which file is missing or unreadable."""
    from omegaconf import OmegaConf

    hydra_dir = Path(run_dir) / ".hydra"
    try:
        config = OmegaConf.load(hydra_dir / "config.yaml")
        hydra = OmegaConf.load(hydra_dir / "hydra.yaml") if (hydra_dir / "hydra.yaml").is_file() else None
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{hydra_dir}: the job's saved config cannot be read ({err})") from None
    if hydra is not None:
        # a node ``hydra`` beside the config: the ``hydra:`` resolver is replaced by plain interpolation into it
        text = OmegaConf.to_yaml(config).replace("${hydra:", "${hydra.")
        config = OmegaConf.merge(OmegaConf.create(text), hydra)
    return config
