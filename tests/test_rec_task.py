"""task=rec end to end through Hydra, Lightning and torchmetrics on the embedded collages (tiny model)."""

import json

import pytest

from descbench.core.marking.engine import group_by_image, run_rec
from descbench.core.marking.scoring import NegativesError
from descbench.eval import RunContext, evaluate
from tests.conftest import MULTI_PROCESS, run_ddp_eval, run_eval

COLLAGES = [
    "experiment=rec_photos",
    "dataset.builder.num_canvases=6",
    "dataset.builder.canvas_size=160",
    "task.num_workers=0",
]


def test_evaluate_writes_results_per_split(compose_cfg, tmp_path):
    cfg = compose_cfg(
        COLLAGES
        + ["visual_prompt=[circle,blur_outside]", "task.subtract=true", "task.negatives=3", "task.batch_size=4"]
    )
    assert cfg.dataset.name == "rec_collages" and cfg.backbone.model == "descbench-tiny"  # experiment=rec_photos
    metrics, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "rec" and results["splits"] == ["val", "testA", "testB"]
    assert results["visual_prompt"] == ["circle", "blur_outside"] and results["visual_prompt.circle.thickness"] == 2
    assert results["subtract"] is True and results["negatives"] == 3 and results["proposals"] == "gt"
    assert results["weights"].startswith("random") and "random weights" in results["note"]
    rows = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    dataset = objects["dataset"]
    assert [r["index"] for r in rows] == list(range(len(dataset))) and results["num_expressions"] == len(dataset)
    # accuracy overall and per split equal the written predictions
    assert results["acc"] == pytest.approx(sum(r["correct"] for r in rows) / len(rows)) == pytest.approx(metrics["acc"])
    for split in results["splits"]:
        mine = [r["correct"] for r in rows if r["split"] == split]
        assert results[f"acc.{split}"] == pytest.approx(sum(mine) / len(mine))
    for r, e in zip(rows, dataset.expressions):
        assert r["chosen_box"] == e.boxes[r["chosen_index"]] and r["gold_box"] == e.gold_box
    # the Lightning loop equals the framework-free engine (same picks, same scores)
    module = objects["module"]
    direct = run_rec(dataset, list(module.backbones), module.prompts, subtract=True, negatives=3, seed=cfg.seed)
    assert [p.chosen_index for p in direct.predictions] == [r["chosen_index"] for r in rows]
    assert [p.score for p in direct.predictions] == pytest.approx([r["score"] for r in rows], abs=1e-5)
    examples = sorted((run / "examples").glob("*.png"))
    assert len(examples) == min(8, len(module.groups))


def test_each_candidate_is_encoded_once_per_prompt_and_backbone(compose_cfg, tmp_path):
    from descbench.core.backbone import load_backbone

    backbone = load_backbone("descbench-tiny", random_init=True, seed=0)  # the instance the config will get
    calls = []
    hook = backbone.model.visual.register_forward_hook(lambda m, inputs, out: calls.append(inputs[0].shape[0]))
    try:
        cfg = compose_cfg(COLLAGES + ["visual_prompt=[circle,crop,grayscale_outside]", "task.batch_size=2"])
        _, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    finally:
        hook.remove()
    groups = group_by_image(objects["dataset"].expressions)
    assert any(len(g.indices) > 1 for g in groups)
    assert calls == [len(g.boxes) * 3 for g in groups]  # one forward per image: candidates x prompts


def test_too_many_negatives_is_a_config_error(compose_cfg, tmp_path):
    cfg = compose_cfg(COLLAGES + ["task.subtract=true", "task.negatives=500"])
    with pytest.raises(NegativesError, match=r"task.negatives=500 but expression 0 .* has only \d+ other expressions"):
        evaluate(cfg, RunContext(run_dir=tmp_path / "run"))


def test_known_answer_on_the_shapes_world(compose_cfg, tmp_path):
    """The world's model finds the referred object far above chance with a red circle; unmarked, it cannot."""
    accuracy = {}
    for prompt in ("circle", "none"):
        cfg = compose_cfg(
            [
                "experiment=rec_shapes",
                "dataset.builder.num_canvases=25",
                f"visual_prompt={prompt}",
                "task.num_workers=0",
            ]
        )
        metrics, _ = evaluate(cfg, RunContext(run_dir=tmp_path / prompt))
        accuracy[prompt] = metrics["acc"]
        chance = json.loads((tmp_path / prompt / "results.json").read_text())["chance_acc"]
    assert accuracy["circle"] > 0.6 and accuracy["circle"] > 1.8 * chance
    assert abs(accuracy["none"] - chance) < 0.15  # all candidates tie: a seeded coin toss


@pytest.mark.slow
def test_visual_prompt_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_eval(
        [
            "-m",
            *COLLAGES,
            "logger=none",
            "visual_prompt=circle,crop,blur_outside,marked_crop",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = [json.loads(p.read_text()) for p in sorted(sweep.rglob("results.json"))]
    assert sorted(r["visual_prompt"] for r in runs) == ["blur_outside", "circle", "crop", "marked_crop"]
    assert all({"acc", "acc.val", "acc.testA", "acc.testB"} <= set(r) for r in runs)


@MULTI_PROCESS
@pytest.mark.slow
def test_two_process_ddp_equals_one_process(tmp_path):
    runs = {}
    common = [*COLLAGES, "logger=none", "dataset.builder.num_canvases=7", "task.batch_size=2"]
    for name, extra in {"one": [], "two": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]}.items():
        # own cache per run (the 2-process run must encode, not read the 1-process features); one thread each
        env = {"DESCBENCH_CACHE_DIR": str(tmp_path / f"cache-{name}"), "OMP_NUM_THREADS": "1"}
        proc = run_ddp_eval([*common, *extra], cwd=tmp_path, run_dir=tmp_path / name, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = (
            json.loads((tmp_path / name / "results.json").read_text()),
            (tmp_path / name / "predictions.jsonl").read_text(),
        )
    for key in ("acc", "acc.val", "acc.testA", "acc.testB", "num_expressions"):
        assert runs["one"][0][key] == runs["two"][0][key], key
    assert runs["one"][1] == runs["two"][1]


def test_bad_options_are_one_line_errors(tmp_path):
    proc = run_eval([*COLLAGES, "logger=none", "visual_prompt=halo", f"hydra.run.dir={tmp_path / 'a'}"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: task=rec needs a visual prompt: visual_prompt=NAME, NAME one of circle, rectangle" in proc.stderr
    proc = run_eval(
        [*COLLAGES, "logger=none", "task.subtract=true", "task.negatives=500", f"hydra.run.dir={tmp_path / 'b'}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "error: task.negatives=500 but expression 0" in proc.stderr
