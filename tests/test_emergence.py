"""The emergence study of the shapes world: the trainer's knobs, the grid (bundles cached, evaluated through
descbench.eval) and the marking-caption finder."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from descbench.core.errors import UserError
from descbench.world import BUNDLE_DIR
from descbench.world.captions import TrainingRecipe, draw_training_batch
from descbench.world.check import card_text
from descbench.world.emergence import Cell, bundle_is_current, run_grid
from descbench.world.find_markings import count_markings, read_captions
from descbench.world.rendering import MarkingStyle
from descbench.world.train import CaptionBatches, pseudo_names

ROOT = Path(__file__).resolve().parent.parent
MAGENTA = (255, 0, 255)  # no object colour of the world comes near it: a pixel of it is a marking's


@pytest.fixture(scope="module")
def names():
    return pseudo_names(seed=0)


def _has_marking(image) -> bool:
    return bool((np.asarray(image) == MAGENTA).all(-1).any())


# --------------------------------------------------------------------------- the trainer's knobs


def test_marking_share_is_exact_in_a_seeded_batch(names):
    recipe = TrainingRecipe(marking_share=0.25, marking=MarkingStyle(colour=MAGENTA))
    for step in (0, 7):
        batch = draw_training_batch(3, step, 64, names, recipe)
        drawn = [_has_marking(e.image) for e in batch]
        assert sum(drawn) == 16  # 25 % of 64, counted on the pixels
        assert drawn == [e.marked for e in batch]
    # a share that is not a whole number of samples per batch: floor((k+1) s B) - floor(k s B), by hand for
    # s B = 0.005 x 256 = 1.28: 1.28, 2.56, 3.84, 5.12, 6.40, 7.68, 8.96, 10.24, 11.52, 12.80
    thin = TrainingRecipe(marking_share=0.005)
    assert [thin.marked_count(k, 256) for k in range(10)] == [1, 1, 1, 2, 1, 1, 1, 2, 1, 1]
    assert sum(thin.marked_count(k, 256) for k in range(1000)) == 1280  # exactly 0.5 % of 256,000 samples


@pytest.mark.parametrize("filler", ["single", "multi"])
def test_share_zero_gives_no_marked_training_sample(names, filler):
    recipe = TrainingRecipe(marking_share=0.0, marking=MarkingStyle(colour=MAGENTA), filler=filler)
    loader = iter(CaptionBatches(32, 5, names, recipe=recipe))  # what the trainer iterates
    for _ in range(4):
        *_, marked = next(loader)
        assert int(marked.sum()) == 0
    images = [e.image for step in range(4) for e in draw_training_batch(5, step, 32, names, recipe)]
    assert not any(_has_marking(im) for im in images)
    # the same batches at 25 % do carry magenta ellipses: the pixel test can see them
    marked = TrainingRecipe(marking_share=0.25, marking=MarkingStyle(colour=MAGENTA), filler=filler)
    assert sum(_has_marking(e.image) for e in draw_training_batch(5, 0, 32, names, marked)) == 8


def test_default_recipe_draws_the_shipped_models_batches(names):
    """The defaults reproduce the recipe the shipped bundle was trained on: batch 0 of seed 0 hashed with the
    generator of that release (descbench/world/scene.py before the emergence knobs)."""
    digest = hashlib.sha256()
    for e in draw_training_batch(0, 0, 16, names, TrainingRecipe()):
        digest.update(e.image.tobytes())
        digest.update(repr((e.caption, e.vector, e.preds)).encode())
    assert digest.hexdigest() == "718f60f676cd6fa301309b93ff78defdd92aee6b7c2ad28ef04a7d78bcfa3326"
    # and the marking share of the shipped recipe is drawn per sample: not exactly 25 % of a batch
    counts = {sum(e.marked for e in draw_training_batch(0, k, 64, names, TrainingRecipe())) for k in range(4)}
    assert counts != {16}


def test_shipped_card_text_is_reproduced_by_the_default_recipe():
    config = json.loads((BUNDLE_DIR / "open_clip_config.json").read_text())
    facts = json.loads((BUNDLE_DIR / "training.json").read_text())
    results = json.loads((BUNDLE_DIR / "check.json").read_text())
    assert card_text(config, facts, results) == (BUNDLE_DIR / "MODEL_CARD.md").read_text()


def test_bad_knobs_are_one_line_errors(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for module, args, message in [
        ("descbench.world.train", ["--marking-share", "2"], "marking_share must be a number from 0 to 1"),
        ("descbench.world.train", ["--mark-colour", "mauve"], "a colour is one of red, green, blue, yellow"),
        ("descbench.world.train", ["--mark-width", "0"], "a width is a whole number of px >= 1"),
        ("descbench.world.emergence", ["--shares", "0,1.5"], "--shares are fractions from 0 to 1"),
        ("descbench.world.emergence", ["--sizes", "huge"], "--sizes: unknown 'huge'; use tiny, small, base"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args, "--out", str(tmp_path / "x")],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- the grid


def _tiny_cell(share: float) -> Cell:
    return Cell("tiny", share, steps=2, batch_size=8)


def test_grid_caches_a_bundle_per_cell_and_evaluates_through_the_product(tmp_path):
    cells = [_tiny_cell(0.0), _tiny_cell(0.25)]
    common = {"canvases": 4, "cache_dir": tmp_path / "cache", "progress": False, "threads": 1, "workers": 0}
    first = run_grid(cells, tmp_path / "grid", **common)
    assert first["trained"] == [c.name for c in cells] and first["reused"] == []
    weights = {c.name: tmp_path / "grid" / "bundles" / c.name / "open_clip_model.safetensors" for c in cells}
    stamps = {name: path.stat().st_mtime_ns for name, path in weights.items()}
    facts = json.loads((weights[cells[1].name].parent / "training.json").read_text())
    assert facts["recipe"]["marking_share"] == 0.25 and facts["marked_samples_seen"] == 4  # 2 steps x 2 of 8
    assert (
        facts["size"] == "tiny"
        and "marking share 0.25" in (weights[cells[1].name].parent / "MODEL_CARD.md").read_text()
    )

    # a rerun trains nothing: the bundles are reused as they are, the table is written again
    (tmp_path / "grid" / "emergence.csv").unlink()
    again = run_grid(cells, tmp_path / "grid", **common)
    assert again["trained"] == [] and again["reused"] == [c.name for c in cells]
    assert {name: path.stat().st_mtime_ns for name, path in weights.items()} == stamps

    rows = list(csv.DictReader((tmp_path / "grid" / "emergence.csv").open()))
    assert len(rows) == 2 * 2 * 4  # cells x aspects x arms
    assert {r["marking_share"] for r in rows} == {"0.0", "0.25"}
    for row in rows:  # every accuracy of the table is a job of descbench.eval's multirun
        run = Path(row["run_dir"])
        product = json.loads((run / "results.json").read_text())
        given = (run / ".hydra" / "overrides.yaml").read_text()
        assert f"visual_prompt={row['arm']}" in given and f"dataset.builder.aspect={row['aspect']}" in given
        assert product["backbone"] == "shapes-clip-tiny" and product["pretrained"] == str(
            weights[row["cell"]].resolve()
        )
        assert float(row["acc"]) == product["acc"] and float(row["acc_ci_low"]) == product["acc.ci_low"]
        assert product["acc.ci_method"] == "wilson" and int(row["expressions"]) == product["num_expressions"]
        if row["arm"] == "circle_green":
            assert product["visual_prompt"] == "circle" and product["visual_prompt.circle.colour"] == [0, 255, 0]
    for cell in cells:
        flat = json.loads((tmp_path / "grid" / "cells" / cell.name / "results.json").read_text())
        assert flat["reused_bundle"] is True
        for aspect in ("square", "mixed"):
            for arm in ("circle", "circle_green", "crop", "none"):
                low, high = flat[f"{aspect}.{arm}.acc.ci_low"], flat[f"{aspect}.{arm}.acc.ci_high"]
                assert low <= flat[f"{aspect}.{arm}.acc"] <= high and flat[f"{aspect}.{arm}.acc.ci_method"] == "wilson"
            # a paired difference of two runs on the same expressions is the difference of their accuracies
            delta = flat[f"{aspect}.circle.acc"] - flat[f"{aspect}.crop.acc"]
            assert flat[f"{aspect}.circle-crop"] == pytest.approx(delta, abs=1e-6)
    assert (tmp_path / "grid" / "emergence.png").stat().st_size > 10_000
    assert "| tiny | red | 25 % |" in (tmp_path / "grid" / "emergence.md").read_text()


def test_a_bundle_trained_otherwise_is_an_error(tmp_path):
    cell = _tiny_cell(0.25)
    bundle = tmp_path / cell.name
    assert not bundle_is_current(bundle, cell)  # nothing there: to train
    bundle.mkdir()
    assert not bundle_is_current(bundle, cell)  # an unfinished folder (no training.json): to train again
    recorded = {"size": "tiny", "steps": 2, "batch_size": 8, "seed": 0, "lr": 1.5e-3, "recipe": cell.recipe().facts()}
    (bundle / "training.json").write_text(json.dumps(recorded))
    assert bundle_is_current(bundle, cell)
    (bundle / "training.json").write_text(json.dumps(recorded | {"steps": 3}))
    with pytest.raises(UserError, match=r"was trained with .*\"steps\": 3.*remove that folder"):
        bundle_is_current(bundle, cell)


@pytest.mark.slow
def test_smoke_grid_end_to_end(tmp_path):
    """``python -m descbench.world.emergence --smoke`` in an empty dir: table, figure, one results.json per cell."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DESCBENCH_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "descbench.world.emergence", "--smoke"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = tmp_path / "emergence"
    rows = list(csv.DictReader((out / "emergence.csv").open()))
    assert {r["marking_share"] for r in rows} == {"0.0", "0.25"} and {r["size"] for r in rows} == {"tiny"}
    assert all(float(r["acc_ci_low"]) <= float(r["acc"]) <= float(r["acc_ci_high"]) for r in rows)
    cells = sorted(p.parent.name for p in (out / "cells").glob("*/results.json"))
    assert cells == sorted({r["cell"] for r in rows}) and len(cells) == 2
    assert (out / "emergence.png").is_file() and "2 cells (2 trained, 0 reused)" in proc.stdout


# --------------------------------------------------------------------------- the finder


def test_finder_counts_a_hand_made_caption_file(tmp_path):
    lines = [
        "A photo of my house.",
        "the dog circled in red",  # circled
        "Look at the red circle around the cat",  # circle around, red circle
        "a car parked outside",
        "an arrow pointing at the exit sign",  # arrow
        "sunset",
        "a circle of friends at the party",  # a circle, but no marking
        "RED RING drawn around the player",  # case-insensitive
        "",  # blank lines are not captions
        "the ringmaster and a red circus tent",  # circle/ring only inside other words: no
        "a green box drawn around the car",  # box
    ]
    path = tmp_path / "captions.txt"
    path.write_text("\n".join(lines) + "\n")
    count = count_markings(read_captions(path))
    assert (count.marked, count.total) == (5, 10)
    assert count.by_kind == {"circled": 3, "colour_circle": 0, "arrow": 1, "box": 1}
    assert [m["where"] for m in count.matches] == ["line 2", "line 3", "line 5", "line 8", "line 11"]
    proc = subprocess.run(
        [sys.executable, "-m", "descbench.world.find_markings", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("5 of 10 captions talk about markings: 50.00 %")


def test_finder_reads_json_lines_and_parquet_with_images(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [
        {"key": "a.jpg", "caption": "the cat circled in yellow"},
        {"key": "b.jpg", "caption": "a cat on a mat"},
        {"key": "c.jpg", "caption": "arrows point to the door"},
    ]
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    jsonl = tmp_path / "caps.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    parquet = tmp_path / "caps.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    for path in (jsonl, parquet):
        count = count_markings(read_captions(path), tmp_path / "images")
        assert (count.marked, count.total) == (2, 3)
        assert [(m["image"], m["image_found"]) for m in count.matches] == [("a.jpg", True), ("c.jpg", False)]
    with pytest.raises(UserError, match=r"caps.jsonl has no caption column 'alt' \(its columns: caption, key\)"):
        read_captions(jsonl, caption_key="alt")
    proc = subprocess.run(
        [sys.executable, "-m", "descbench.world.find_markings", str(tmp_path / "missing.txt")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: captions file") and "not found" in proc.stderr
    assert math.isclose(count.share, 2 / 3)
