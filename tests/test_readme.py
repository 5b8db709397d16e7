"""The README's own commands: every ``python -m descbench.*`` line of its code blocks composes as written, and the
short ones (offline, one job, no data the machine lacks) run.

A single run composes through the real command line (``--cfg job``: Hydra composes and prints, nothing runs);
a multirun is expanded into its points as the report lists them (:func:`descbench.report.runs.expected_sweep_points`:
the preset's sweeper params and the command line's sweeps) and each point is composed and checked
(:func:`descbench.shell.checks.check_config`). Placeholders (``<partition>``) stand for a value the reader fills in.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

README = ROOT / "README.md"
PLACEHOLDER = re.compile(r"<[^<>]+>")
#: the primary config of each Hydra entry point
CONFIG_NAMES = {"eval": "eval", "describe": "generate"}


@dataclass(frozen=True)
class Command:
    """One README command: the line as written, its ``descbench`` module and its arguments."""

    line: str
    module: str
    args: tuple[str, ...]

    @property
    def multirun(self) -> bool:
        return "-m" in self.args or "--multirun" in self.args

    @property
    def overrides(self) -> list[str]:
        """The arguments with ``-m`` left out and every ``<placeholder>`` filled with ``x``."""
        return [PLACEHOLDER.sub("x", a) for a in self.args if a not in ("-m", "--multirun")]

    @property
    def offline(self) -> bool:
        """Runs here as written: one job, no data the machine lacks, no server, one process on the CPU, no
        placeholder but in a dry run."""
        text = " ".join(self.args)
        needs = ("/data/", "describe=llm", "backend", "trainer=ddp", "trainer.num_nodes", "--sweep-group")
        placeholder = "<" in text and "--dry-run" not in self.args
        return (
            not self.multirun
            and not placeholder
            and not any(n in text for n in needs)
            and self.line.startswith("python ")
        )


def readme_commands() -> list[Command]:
    """Every ``[python|torchrun|srun ...] -m descbench.<module> ...`` line of the README's code blocks."""
    commands = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", README.read_text(encoding="utf-8"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            for i, token in enumerate(tokens[:-1]):
                if token == "-m" and tokens[i + 1].startswith("descbench."):
                    module = tokens[i + 1].removeprefix("descbench.")
                    commands.append(Command(" ".join(tokens), module, tuple(tokens[i + 2 :])))
                    break
    return commands


COMMANDS = readme_commands()
HYDRA = [c for c in COMMANDS if c.module in CONFIG_NAMES]


def test_the_readme_has_the_commands_this_file_checks():
    modules = {c.module for c in COMMANDS}
    assert modules == {"eval", "describe", "report", "dashboard"}, modules
    assert len(HYDRA) >= 30 and sum(c.multirun for c in HYDRA) >= 5
    assert "python -m descbench.eval -m describe.detailed=true,false num_desc=1..7" in [c.line for c in COMMANDS]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "WANDB_MODE": "offline",
        "DESCBENCH_CACHE_DIR": str(tmp_path / "cache"),
    }


@pytest.mark.parametrize("command", [c for c in HYDRA if not c.multirun], ids=lambda c: c.line[:90])
def test_a_single_run_composes_on_the_command_line(command, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", f"descbench.{command.module}", *command.overrides, "--cfg", "job"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg = yaml.safe_load(proc.stdout)
    assert isinstance(cfg, dict) and "task" in cfg and "backbone" in cfg


def sweep_points(command: Command, tmp_path: Path) -> list[list[str]]:
    """The jobs of a README multirun: the preset's sweeper params and the command line, as Hydra's basic sweeper
    expands them (the report's own expansion)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from descbench.report.runs import expected_sweep_points
    from descbench.shell.cli import expand_ranges
    from descbench.shell.config import compose_config

    parsed = OverridesParser.create().parse_overrides(expand_ranges(command.overrides))
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    cfg = compose_config(fixed, CONFIG_NAMES[command.module], return_hydra_config=True)
    params = dict(cfg.hydra.sweeper.params or {})
    record = tmp_path / "multirun.yaml"
    record.write_text(
        yaml.safe_dump({"hydra": {"sweeper": {"params": params}, "overrides": {"task": command.overrides}}})
    )
    return expected_sweep_points(record)


@pytest.mark.parametrize("command", [c for c in HYDRA if c.multirun], ids=lambda c: c.line[:90])
def test_every_point_of_a_multirun_composes_and_passes_the_checks(command, tmp_path):
    from descbench.shell.checks import check_config
    from descbench.shell.config import compose_config

    points = sweep_points(command, tmp_path)
    assert len(points) >= 2
    for point in points:
        cfg = compose_config([*point, *local_paths(tmp_path)], CONFIG_NAMES[command.module])
        if command.module == "eval" and "trainer=" not in " ".join(point):  # a GPU trainer is checked on a GPU
            check_config(cfg, multirun=True)


def test_the_design_sweep_has_its_14_points(tmp_path):
    [command] = [c for c in HYDRA if c.line == "python -m descbench.eval -m describe.detailed=true,false num_desc=1..7"]
    points = sweep_points(command, tmp_path)
    assert len(points) == 14 and ["describe.detailed=true", "num_desc=1"] in points
    assert ["describe.detailed=false", "num_desc=7"] in points


@pytest.mark.parametrize("command", [c for c in HYDRA if c.offline and c.module == "eval"], ids=lambda c: c.line[:90])
def test_a_single_run_passes_the_config_checks(command, tmp_path):
    from descbench.shell.checks import check_config
    from descbench.shell.config import compose_config

    check_config(compose_config([*command.overrides, *local_paths(tmp_path)], CONFIG_NAMES[command.module]))


def local_paths(tmp_path: Path) -> list[str]:
    """The run's paths outside Hydra's runtime (which ``compose`` does not set), under ``tmp_path``."""
    return [f"paths.cache_dir={tmp_path / 'cache'}", f"paths.output_dir={tmp_path / 'run'}"]


SHORT = [c for c in COMMANDS if c.offline]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One feature cache for the README's runs (as one user's machine has): images encoded once per setting."""
    return tmp_path_factory.mktemp("readme-cache")


@pytest.mark.slow
@pytest.mark.parametrize("command", SHORT, ids=lambda c: c.line[:90])
def test_a_short_command_runs_as_written(command, tmp_path, shared_cache):
    """The offline commands run here exactly as the README writes them (one job, the machine's own data)."""
    proc = subprocess.run(
        [sys.executable, "-m", f"descbench.{command.module}", *command.overrides],
        cwd=tmp_path,
        env={**_env(tmp_path), "DESCBENCH_CACHE_DIR": str(shared_cache)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    if command.module == "eval":
        assert len(list(tmp_path.glob("outputs/**/results.json"))) == 1
