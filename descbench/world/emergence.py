"""Emergence in the shapes world: how often must a model see a circled object before circling works?

    python -m descbench.world.emergence [--smoke] [--out DIR] [--shares 0,0.005,0.02,0.08,0.25]
        [--sizes tiny,small] [--steps N] [--batch-size B] [--extra-colours green] [--canvases N]

The red-circle study explains marking by rare training images with red circles (and captions about what they
circle). Here the training data is ours: each cell of the grid trains a shapes-world model
(:func:`descbench.world.train.train`) with a given share of marked samples and a given capacity, then
evaluates it through the product (one ``python -m descbench.eval -m task=rec ...`` multirun per cell) on the
world's REC set with the visual prompts ``circle`` (red), ``circle_green`` (did it learn "red circle" or "any
ring"?), ``crop`` and ``none``, on square and mixed (4:3, 3:4) canvases.

Outputs (under ``--out``, ``./emergence`` by default):

- ``bundles/<cell>/``: the trained model (a ``local-dir:`` bundle with ``training.json`` and a model card);
  a rerun trains only the cells whose bundle is missing (``--bundles`` shares them between grids);
- ``cells/<cell>/results.json``: the cell's knobs, training facts and every arm's accuracy with its Wilson
  interval, and each marking's paired difference from ``crop`` (bootstrap interval, exact McNemar);
  ``cells/<cell>/runs/<job>/``: the multirun ``descbench.eval`` wrote (each job's ``results.json``,
  ``predictions.jsonl``, ``.hydra/overrides.yaml``), with its ``command.txt`` and ``eval.log`` beside it;
- ``emergence.csv`` (one row per cell x canvas x arm), ``emergence.md`` (the table per canvas) and
  ``emergence.png`` (circle accuracy and circle - crop against the marking share on a symmetric-log axis,
  linear below the smallest share so that share 0 has a place; one line per capacity; chance and ``none``).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from descbench.core.errors import UserError
from descbench.core.files import write_atomic
from descbench.core.stats import paired_comparison
from descbench.world.captions import FILLERS, TrainingRecipe
from descbench.world.rendering import MARK_COLOURS, MarkingStyle
from descbench.world.train import MODEL_SIZES, parse_widths

log = logging.getLogger(__name__)

#: the full grid of the study (``--smoke`` replaces these with SMOKE)
GRID = {
    "shares": "0,0.005,0.02,0.08,0.25",
    "sizes": "tiny,small",
    "steps": 600,
    "batch_size": 256,
    "canvases": 150,
    "extra_colours": "green",
}
#: two shares, one size, a few hundred steps of small batches: minutes on 2 CPU cores
#: (one torch thread and no data worker: on 2 cores shared with other jobs two threads spin-wait for each other)
SMOKE = {
    "shares": "0,0.25",
    "sizes": "tiny",
    "steps": 200,
    "batch_size": 64,
    "canvases": 30,
    "extra_colours": "",
    "threads": 1,
    "workers": 0,
}
ASPECTS = ("square", "mixed")


@dataclass(frozen=True)
class Arm:
    """One evaluation of a bundle: a visual prompt of ``conf/visual_prompt/`` (``descbench.eval visual_prompt=``)."""

    name: str
    circle_colour: str = ""


#: every bundle is evaluated with each of these, on each canvas aspect; ``crop`` is the reference of the deltas.
#: ``circle`` is the product's default (red [255, 0, 0], 2 px at input resolution), ``circle_green`` the same in
#: green [0, 255, 0]
ARMS = (Arm("circle", "red"), Arm("circle_green", "green"), Arm("crop"), Arm("none"))
REFERENCE_ARM = "crop"


@dataclass(frozen=True)
class Cell:
    """One model of the grid: its capacity, data seen and training recipe."""

    size: str
    marking_share: float
    colour: str = "red"
    widths: tuple[int, int] = (1, 2)
    filler: str = "single"
    steps: int = 600
    batch_size: int = 256
    seed: int = 0
    lr: float = 1.5e-3

    @property
    def name(self) -> str:
        """The cell's folder name: every knob in it, so that no two cells share a bundle."""
        width = f"{self.widths[0]}-{self.widths[1]}"
        return (
            f"{self.size}_share{self.marking_share:g}_{self.colour}_w{width}_{self.filler}"
            f"_{self.steps}x{self.batch_size}_lr{self.lr:g}_seed{self.seed}"
        )

    def recipe(self) -> TrainingRecipe:
        style = MarkingStyle(colour=MARK_COLOURS[self.colour], widths=self.widths)
        return TrainingRecipe(marking_share=self.marking_share, marking=style, filler=self.filler)

    def knobs(self) -> dict[str, Any]:
        """The cell's columns in the table."""
        return {
            "cell": self.name,
            "size": self.size,
            "marking_share": self.marking_share,
            "train_colour": self.colour,
            "train_widths": f"{self.widths[0]}-{self.widths[1]}",
            "filler": self.filler,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "lr": self.lr,
        }


def build_cells(
    shares: list[float],
    sizes: list[str],
    *,
    colour: str = "red",
    extra_colours: list[str] = (),
    **common: Any,
) -> list[Cell]:
    """The grid: every share x size with ``colour``, plus for each extra colour one cell at the largest share
    and the largest size (trained on green, say; every cell is tested with red and green circles)."""
    cells = [Cell(size, share, colour, **common) for size in sizes for share in shares]
    largest = max(sizes, key=list(MODEL_SIZES).index)
    cells += [Cell(largest, max(shares), extra, **common) for extra in extra_colours if extra != colour]
    return cells


# --------------------------------------------------------------------------- training, cached per cell


def bundle_is_current(bundle: Path, cell: Cell) -> bool:
    """Whether ``bundle`` holds the finished training of ``cell`` (``training.json`` is written last).

    A finished bundle whose recorded knobs differ from the cell's is an error: its folder name says otherwise.
    """
    facts_file = bundle / "training.json"
    if not facts_file.is_file():
        return False
    facts = json.loads(facts_file.read_text())
    recorded = {k: facts.get(k) for k in ("size", "steps", "batch_size", "seed", "lr", "recipe")}
    wanted = {
        "size": cell.size,
        "steps": cell.steps,
        "batch_size": cell.batch_size,
        "seed": cell.seed,
        "lr": cell.lr,
        "recipe": cell.recipe().facts(),
    }
    if recorded != wanted:
        raise UserError(
            f"bundle {bundle} was trained with {json.dumps(recorded)}, not with this cell's {json.dumps(wanted)}: "
            "remove that folder (or choose another --bundles dir)"
        )
    return True


def train_cell(cell: Cell, bundle: Path, workers: int = 1, threads: int = 2, measure_card: bool = False) -> dict:
    """Train ``cell`` into ``bundle`` (an unfinished folder is started afresh); returns its training facts.

    The bundle's model card states the config and the recipe; ``measure_card`` adds the shipped card's
    measurements (named classes, attribute classes, REC: half a minute to two minutes per bundle on 2 cores).
    """
    from descbench.world.check import write_model_card
    from descbench.world.train import train

    if bundle.exists():
        shutil.rmtree(bundle)
    facts = train(
        cell.steps,
        bundle,
        seed=cell.seed,
        batch_size=cell.batch_size,
        lr=cell.lr,
        workers=workers,
        threads=threads,
        size=cell.size,
        recipe=cell.recipe(),
    )
    write_model_card(bundle, facts, measure=measure_card)
    return facts


# --------------------------------------------------------------------------- evaluation through descbench.eval


def _quoted(value: str) -> str:
    """A Hydra override value in single quotes (paths may hold characters the override grammar reserves)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def eval_command(bundle: Path, canvases: int, cache_dir: Path, sweep_dir: Path) -> list[str]:
    """The ``descbench.eval`` multirun of one bundle: every arm on every canvas aspect, one job each."""
    return [
        sys.executable,
        "-m",
        "descbench.eval",
        "-m",
        "task=rec",
        "logger=none",
        f"backbone.model={_quoted('local-dir:' + str(bundle.resolve()))}",
        f"visual_prompt={','.join(arm.name for arm in ARMS)}",
        f"dataset.builder.aspect={','.join(ASPECTS)}",
        f"dataset.builder.num_canvases={canvases}",
        "task.num_workers=0",
        "task.num_examples=0",  # the grid's table needs no example images (a run would render 8)
        "trainer.enable_progress_bar=false",
        f"paths.cache_dir={_quoted(str(cache_dir.resolve()))}",
        f"hydra.sweep.dir={_quoted(str(sweep_dir.resolve()))}",
    ]


def evaluate_bundle(bundle: Path, cell_dir: Path, canvases: int, cache_dir: Path, threads: int) -> dict:
    """Run ``python -m descbench.eval -m ...`` on ``bundle``; returns ``{(aspect, arm): job dir}``.

    The product runs as its command line, in a process of its own (the world, a lower part, imports no shell
    module); its output goes to ``cell_dir/eval.log``, the command to ``cell_dir/command.txt``. A failed job
    stops the grid with the product's one-line error.
    """
    import descbench

    sweep = cell_dir / "runs"
    if sweep.exists():  # evaluated afresh: the table never mixes jobs of two evaluations
        shutil.rmtree(sweep)
    command = eval_command(bundle, canvases, cache_dir, sweep)
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(cell_dir / "command.txt", " ".join(command[1:]) + "\n")
    source = str(Path(descbench.__file__).resolve().parents[1])  # this descbench, installed or not
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH")) if p),
        "OMP_NUM_THREADS": str(threads),
        "WANDB_MODE": os.environ.get("WANDB_MODE", "offline"),
    }
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    write_atomic(cell_dir / "eval.log", proc.stdout + proc.stderr)
    if proc.returncode:
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:") or ": " in line]
        raise UserError(
            f"descbench.eval failed on {bundle} (exit code {proc.returncode}): "
            f"{errors[-1] if errors else 'see ' + str(cell_dir / 'eval.log')}"
        )
    jobs = {}
    for overrides_file in sorted(sweep.glob("*/.hydra/overrides.yaml")):
        given = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()) if "=" in o)
        jobs[(given["dataset.builder.aspect"], given["visual_prompt"])] = overrides_file.parent.parent
    wanted = {(aspect, arm.name) for aspect in ASPECTS for arm in ARMS}
    if set(jobs) != wanted or not all((d / "results.json").is_file() for d in jobs.values()):
        raise UserError(
            f"descbench.eval left {len(jobs)} of {len(wanted)} jobs in {sweep}: see {cell_dir / 'eval.log'}"
        )
    return jobs


def _correct(run_dir: Path) -> list[int]:
    """The per-expression outcomes of a run, in expression order (``predictions.jsonl``)."""
    rows = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines() if line]
    return [int(r["correct"]) for r in sorted(rows, key=lambda r: r["index"])]


def evaluate_cell(
    cell: Cell, bundle: Path, cell_dir: Path, canvases: int, cache_dir: Path, facts: dict, threads: int = 2
) -> tuple[dict, list[dict]]:
    """Every arm on every aspect (:func:`evaluate_bundle`); returns the cell's flat results and its table rows."""
    jobs = evaluate_bundle(bundle, cell_dir, canvases, cache_dir, threads)
    flat: dict[str, Any] = {
        **cell.knobs(),
        "model_name": facts.get("model_name"),
        "params": facts.get("params"),
        "samples_seen": facts.get("samples_seen"),
        "marked_samples_seen": facts.get("marked_samples_seen"),
        "train_seconds": facts.get("train_seconds"),
        "final_loss_smoothed": facts.get("final_loss_smoothed"),
        "sha256": facts.get("sha256"),
        "bundle": str(bundle),
        "evaluated_by": "python -m descbench.eval -m task=rec ... (command.txt)",
    }
    rows: list[dict] = []
    for aspect in ASPECTS:
        runs = {arm.name: jobs[(aspect, arm.name)] for arm in ARMS}
        results = {name: json.loads((run / "results.json").read_text()) for name, run in runs.items()}
        reference = _correct(runs[REFERENCE_ARM])
        for arm in ARMS:
            res = results[arm.name]
            key = f"{aspect}.{arm.name}"
            row = {
                **cell.knobs(),
                "params": facts.get("params"),
                "samples_seen": facts.get("samples_seen"),
                "marked_samples_seen": facts.get("marked_samples_seen"),
                "aspect": aspect,
                "arm": arm.name,
                "visual_prompt": res["visual_prompt"],
                "circle_colour": arm.circle_colour,
                "acc": res["acc"],
                "acc_ci_low": res["acc.ci_low"],
                "acc_ci_high": res["acc.ci_high"],
                "acc_ci_method": res["acc.ci_method"],
                "expressions": res["num_expressions"],
                "chance": res["chance_acc"],
            }
            if arm.name != REFERENCE_ARM:
                paired = paired_comparison(reference, _correct(runs[arm.name]))
                row |= {
                    "minus_crop": paired.delta,
                    "minus_crop_ci_low": paired.ci_low,
                    "minus_crop_ci_high": paired.ci_high,
                    "minus_crop_mcnemar_p": paired.p_value,
                }
                flat |= {
                    f"{key}-crop": paired.delta,
                    f"{key}-crop.ci_low": paired.ci_low,
                    f"{key}-crop.ci_high": paired.ci_high,
                    f"{key}-crop.ci_method": "paired bootstrap",
                    f"{key}-crop.mcnemar_p": paired.p_value,
                }
            else:
                row |= {"minus_crop": "", "minus_crop_ci_low": "", "minus_crop_ci_high": "", "minus_crop_mcnemar_p": ""}
            row["run_dir"] = str(runs[arm.name])
            rows.append(row)
            flat |= {
                f"{key}.acc": res["acc"],
                f"{key}.acc.ci_low": res["acc.ci_low"],
                f"{key}.acc.ci_high": res["acc.ci_high"],
                f"{key}.acc.ci_method": res["acc.ci_method"],
                f"{key}.expressions": res["num_expressions"],
            }
        flat[f"{aspect}.chance"] = results[REFERENCE_ARM]["chance_acc"]
    return flat, rows


# --------------------------------------------------------------------------- table and figure


def write_table(rows: list[dict], path: Path) -> Path:
    """``emergence.csv``: one row per cell x canvas aspect x arm."""
    fields = list(rows[0])

    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)

    write_atomic(path, lambda p: _write_text(p, write))
    return path


def _write_text(path: Path, write) -> None:
    with open(path, "w", newline="") as handle:
        write(handle)


def _pct(value: Any) -> str:
    return "" if value in ("", None) else f"{100 * float(value):.1f}"


def _with_ci(row: dict, key: str) -> str:
    if row.get(key) in ("", None):
        return ""
    return f"{_pct(row[key])} [{_pct(row[key + '_ci_low'])}, {_pct(row[key + '_ci_high'])}]"


def write_markdown(rows: list[dict], path: Path) -> Path:
    """``emergence.md``: per canvas aspect, one line per cell with every arm (%, 95 % interval)."""
    lines = ["# Emergence in the shapes world", ""]
    lines.append(
        "Accuracy % of `descbench.eval task=rec` (gold boxes; Wilson 95 % interval); circle - crop in points "
        "(paired bootstrap 95 % interval over the same expressions)."
    )
    for aspect in ASPECTS:
        lines += ["", f"## {aspect} canvases", ""]
        lines.append(
            "| size | trained on | marking share | circle (red) | circle (green) | crop | none | circle - crop | chance |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        by_cell: dict[str, dict[str, dict]] = {}
        for row in rows:
            if row["aspect"] == aspect:
                by_cell.setdefault(row["cell"], {})[row["arm"]] = row
        for arms in by_cell.values():
            first = arms["circle"]
            lines.append(
                f"| {first['size']} | {first['train_colour']} | {100 * float(first['marking_share']):g} % | "
                f"{_with_ci(arms['circle'], 'acc')} | {_with_ci(arms['circle_green'], 'acc')} | "
                f"{_with_ci(arms['crop'], 'acc')} | {_with_ci(arms['none'], 'acc')} | "
                f"{_with_ci(arms['circle'], 'minus_crop')} | {_pct(first['chance'])} |"
            )
    write_atomic(path, "\n".join(lines) + "\n")
    return path


def plot_emergence(rows: list[dict], path: Path) -> Path:
    """Circle accuracy (left) and circle - crop (right) against the marking share, a row per canvas aspect."""
    from matplotlib.figure import Figure  # Agg through Figure.savefig: no pyplot, no global state

    shares = sorted({float(r["marking_share"]) for r in rows})
    positive = [s for s in shares if s > 0]
    linthresh = 100 * min(positive) if positive else 1.0
    groups = sorted({(r["size"], r["train_colour"], r["filler"], r["steps"], r["batch_size"]) for r in rows})
    sizes = list(MODEL_SIZES)
    palette = {size: colour for size, colour in zip(sizes, ("tab:orange", "tab:blue", "tab:purple"))}
    fig = Figure(figsize=(11, 4.2 * len(ASPECTS)))
    axes = fig.subplots(len(ASPECTS), 2, squeeze=False)
    for row_axes, aspect in zip(axes, ASPECTS):
        acc_ax, delta_ax = row_axes
        mine = [r for r in rows if r["aspect"] == aspect]
        for group in groups:
            size, colour, filler, steps, batch = group
            cells = sorted(
                (r for r in mine if (r["size"], r["train_colour"], r["filler"], r["steps"], r["batch_size"]) == group),
                key=lambda r: float(r["marking_share"]),
            )
            label = f"{size} ({MODEL_SIZES[size]['vision_cfg']['width']}-wide image tower)"
            if colour != "red":
                label += f", trained on {colour}"
            style = {"color": palette.get(size, "black"), "marker": "o" if colour == "red" else "s"}
            if colour != "red":
                style["linestyle"] = "none"  # a single cell: a point, not a line
            for arm, extra in (("circle", {}), ("circle_green", {"linestyle": "--", "alpha": 0.7})):
                pts = [r for r in cells if r["arm"] == arm]
                if not pts:
                    continue
                x = [100 * float(r["marking_share"]) for r in pts]
                y = [100 * float(r["acc"]) for r in pts]
                err = [
                    [100 * (float(r["acc"]) - float(r["acc_ci_low"])) for r in pts],
                    [100 * (float(r["acc_ci_high"]) - float(r["acc"])) for r in pts],
                ]
                name = label + (" - red circle" if arm == "circle" else " - green circle at test")
                acc_ax.errorbar(x, y, yerr=err, capsize=3, label=name, **(style | extra))
            nones = [r for r in cells if r["arm"] == "none"]
            if nones and colour == "red":
                acc_ax.plot(
                    [100 * float(r["marking_share"]) for r in nones],
                    [100 * float(r["acc"]) for r in nones],
                    color=palette.get(size, "black"),
                    linestyle=":",
                    label=f"{size}: none (no marking)",
                )
            pts = [r for r in cells if r["arm"] == "circle"]
            if pts:
                delta_ax.errorbar(
                    [100 * float(r["marking_share"]) for r in pts],
                    [100 * float(r["minus_crop"]) for r in pts],
                    yerr=[
                        [100 * (float(r["minus_crop"]) - float(r["minus_crop_ci_low"])) for r in pts],
                        [100 * (float(r["minus_crop_ci_high"]) - float(r["minus_crop"])) for r in pts],
                    ],
                    capsize=3,
                    label=label,
                    **style,
                )
        chance = 100 * sum(float(r["chance"]) for r in mine) / max(1, len(mine))
        acc_ax.axhline(chance, color="grey", linewidth=1, label=f"chance ({chance:.1f} %)")
        delta_ax.axhline(0, color="grey", linewidth=1)
        for ax in (acc_ax, delta_ax):
            ax.set_xscale("symlog", linthresh=linthresh, linscale=0.5)
            ax.set_xticks([100 * s for s in shares], [f"{100 * s:g}" for s in shares])
            ax.set_xlabel("training samples with the described object circled (%)")
            ax.grid(alpha=0.3)
        acc_ax.set_ylabel("REC accuracy (%)")
        acc_ax.set_title(f"circle-REC, {aspect} canvases")
        delta_ax.set_ylabel("circle - crop (points)")
        delta_ax.set_title(f"circle - crop, {aspect} canvases")
        acc_ax.legend(fontsize=7)
        delta_ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda p: fig.savefig(p, format=path.suffix.lstrip(".") or "png", dpi=110))
    return path


# --------------------------------------------------------------------------- the grid


def run_grid(
    cells: list[Cell],
    out: Path,
    *,
    bundles: Path | None = None,
    canvases: int = 100,
    cache_dir: Path | None = None,
    workers: int = 1,
    threads: int = 2,
    measure_cards: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train what is missing, evaluate every cell, write the table, the summary and the figure.

    Returns ``{"trained": [cell names], "reused": [...], "rows": [...], "table", "figure", "markdown"}``.
    """
    import torch
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    torch.set_num_threads(threads)  # the trainer's (the evaluations get OMP_NUM_THREADS)
    bundles = bundles or out / "bundles"
    cache_dir = cache_dir or Path(os.environ.get("DESCBENCH_CACHE_DIR") or Path.cwd() / ".cache" / "descbench")
    trained, reused, rows = [], [], []
    bar = tqdm(cells, desc="emergence grid", unit="cell", disable=not progress)
    with logging_redirect_tqdm():
        for cell in bar:
            bundle = bundles / cell.name
            if bundle_is_current(bundle, cell):
                reused.append(cell.name)
                facts = json.loads((bundle / "training.json").read_text())
            else:
                bar.set_postfix_str(f"training {cell.name}")
                facts = train_cell(cell, bundle, workers, threads, measure_cards)
                trained.append(cell.name)
            bar.set_postfix_str(f"evaluating {cell.name}")
            cell_dir = out / "cells" / cell.name
            flat, cell_rows = evaluate_cell(cell, bundle, cell_dir, canvases, cache_dir, facts, threads)
            flat["reused_bundle"] = cell.name in reused
            write_atomic(cell_dir / "results.json", json.dumps(flat, indent=2) + "\n")
            rows += cell_rows
    table = write_table(rows, out / "emergence.csv")
    markdown = write_markdown(rows, out / "emergence.md")
    figure = plot_emergence(rows, out / "emergence.png")
    return {
        "trained": trained,
        "reused": reused,
        "rows": rows,
        "table": table,
        "markdown": markdown,
        "figure": figure,
    }


def _floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{what} is a comma-separated list of numbers, got {text!r}") from None
    if not values:
        raise ValueError(f"{what} is empty")
    return values


def _names(text: str, allowed, what: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    wrong = [v for v in values if v not in allowed]
    if wrong:
        raise ValueError(f"{what}: unknown {', '.join(map(repr, wrong))}; use {', '.join(allowed)}")
    return values


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[Cell]]:
    """The command line and the cells it asks for (``parser.error``, exit code 2, on a bad value)."""
    parser = argparse.ArgumentParser(
        prog="python -m descbench.world.emergence",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help=f"a small grid for tests: {SMOKE}")
    parser.add_argument("--out", type=Path, default=Path("emergence"), help="output folder")
    parser.add_argument("--bundles", type=Path, default=None, help="where bundles are cached (default OUT/bundles)")
    parser.add_argument("--shares", default=GRID["shares"], help="marking shares, 0-1, comma-separated")
    parser.add_argument("--sizes", default=GRID["sizes"], help=f"capacities, of {', '.join(MODEL_SIZES)}")
    parser.add_argument("--steps", type=int, default=GRID["steps"])
    parser.add_argument("--batch-size", type=int, default=GRID["batch_size"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--colour", default="red", help=f"the marking seen in training: {', '.join(MARK_COLOURS)}")
    parser.add_argument("--mark-width", default="1-2", help="its width in px at the 64 px canvas (2, or 1-2)")
    parser.add_argument("--filler", choices=FILLERS, default="single", help="what the unmarked samples are")
    parser.add_argument(
        "--extra-colours",
        default=GRID["extra_colours"],
        help="one more cell per colour, trained with it at the largest share and size ('' for none)",
    )
    parser.add_argument("--canvases", type=int, default=GRID["canvases"], help="REC canvases per aspect")
    parser.add_argument("--workers", type=int, default=1, help="data workers of the trainer (speed only)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (speed only; 1 on shared cores)")
    parser.add_argument(
        "--measure-cards",
        action="store_true",
        help="measure each new bundle's model card (python -m descbench.world.check)",
    )
    parser.add_argument("--plan", action="store_true", help="list the cells and which bundles exist, then stop")
    args = parser.parse_args(argv)
    if args.smoke:  # the smoke grid's values, except those given on the command line
        given = {a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv or sys.argv[1:]) if a.startswith("--")}
        for key, value in SMOKE.items():
            if key not in given:
                setattr(args, key, value)
    try:
        shares = _floats(args.shares, "--shares")
        if not all(0 <= s <= 1 for s in shares):
            raise ValueError(f"--shares are fractions from 0 to 1 (0.25 = 25 %), got {args.shares!r}")
        sizes = _names(args.sizes, list(MODEL_SIZES), "--sizes")
        _names(args.colour, list(MARK_COLOURS), "--colour")
        extra = _names(args.extra_colours, list(MARK_COLOURS), "--extra-colours")
        widths = parse_widths(args.mark_width)
        if min(args.steps, args.batch_size, args.canvases, args.threads) < 1 or args.workers < 0:
            raise ValueError("--steps, --batch-size, --canvases and --threads must be at least 1, --workers 0 or more")
    except ValueError as err:
        parser.error(str(err))
    cells = build_cells(
        sorted(set(shares)),
        sizes,
        colour=args.colour,
        extra_colours=extra,
        widths=widths,
        filler=args.filler,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        lr=args.lr,
    )
    return args, cells


def main(argv: list[str] | None = None) -> None:
    args, cells = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("descbench.world").setLevel(logging.INFO)  # the trainer's loss every 50 steps
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # its device lines, once per evaluation
    bundles = args.bundles or args.out / "bundles"
    if args.plan:
        for cell in cells:
            state = "trained" if (bundles / cell.name / "training.json").is_file() else "to train"
            print(f"{cell.name}: {state}")
        return
    start = time.time()
    try:
        done = run_grid(
            cells,
            args.out,
            bundles=bundles,
            canvases=args.canvases,
            workers=args.workers,
            threads=args.threads,
            measure_cards=args.measure_cards,
        )
    except UserError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)
    print(Path(done["markdown"]).read_text())
    print(
        f"{len(cells)} cells ({len(done['trained'])} trained, {len(done['reused'])} reused) in "
        f"{math.ceil(time.time() - start)} s: {done['table']}, {done['figure']}, {done['markdown']}, "
        f"{args.out / 'cells'}/*/results.json"
    )


if __name__ == "__main__":
    main()
