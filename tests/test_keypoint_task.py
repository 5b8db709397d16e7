"""task=keypoints and task=marking_bias end to end: the Lightning loop equals a slow reference loop, outputs,
exact 2-process DDP."""

import csv
import json

import pytest
import torch

from descbench.core.marking.points import pck_threshold, point_box, point_distance
from descbench.core.marking.scoring import pick_candidates
from descbench.eval import RunContext, evaluate
from tests.conftest import MULTI_PROCESS, run_ddp_eval

FEW = ["task=keypoints", "dataset.builder.num_instances=12", "task.num_workers=0", "task.batch_size=5"]


def reference_localization(dataset, backbone, prompt, template, radius, unit, alpha, seed):
    """One image at a time, one candidate at a time: the PCK outcome of every query, in query order."""
    outcomes = []
    key = 0
    with torch.no_grad():
        for instance in dataset.instances:
            image = dataset.load_image(instance.image_id)
            parts = [p for p in dataset.parts_for(instance.category) if instance.keypoints.get(p) is not None]
            feats = []
            for part in parts:
                box = point_box(instance.keypoints[part], radius, unit, instance.box, image.size, backbone.image_size)
                marked = backbone.preprocess(prompt.apply(image, box, input_size=backbone.image_size))[None]
                feats.append(backbone.encode_images(marked)[0])
            feats = torch.stack(feats)
            for part in parts:
                text = backbone.encode_texts([template.format(part=part, category=instance.category)])[0]
                scores = backbone.logit_scale * (feats @ text)
                (pick,) = pick_candidates([scores], seed, keys=[key])
                key += 1
                gold, chosen = instance.keypoints[part], instance.keypoints[parts[pick]]
                outcomes.append(point_distance(chosen, gold) <= pck_threshold(instance.box, alpha))
    return outcomes


def test_localization_equals_a_slow_loop_and_writes_its_outputs(compose_cfg, tmp_path):
    cfg = compose_cfg(FEW)
    results, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    module = objects["module"]
    expected = reference_localization(
        objects["dataset"], objects["backbone"], module.prompts[0], module.template, 0.25, "box", 0.1, cfg.seed
    )
    rows = list(csv.DictReader((tmp_path / "run" / "predictions.csv").open()))
    assert [r["correct"] == "1" for r in rows] == expected
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written["pck"] == pytest.approx(sum(expected) / len(expected)) == pytest.approx(results["pck"])
    assert written["num_keypoints"] == len(expected) and 0 < written["chance_pck"] < 1
    assert written["pck.ci_method"] == "wilson" and written["pck.ci_low"] <= written["pck"] <= written["pck.ci_high"]
    parts = {r["part"] for r in rows}
    for part in parts:
        mine = [r["correct"] == "1" for r in rows if r["part"] == part]
        assert written[f"pck.{part}"] == pytest.approx(sum(mine) / len(mine))
    assert len(list((tmp_path / "run" / "examples").glob("*.png"))) == 8


def test_naming_records_accuracy_left_right_merged_and_a_confusion_table(compose_cfg, tmp_path):
    cfg = compose_cfg(FEW + ["task.mode=naming"])
    evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    rows = list(csv.DictReader((tmp_path / "run" / "predictions.csv").open()))
    assert written["acc"] == pytest.approx(sum(r["correct"] == "1" for r in rows) / len(rows))
    assert written["acc_lr_merged"] >= written["acc"] and written["chance_acc_lr_merged"] >= written["chance_acc"]
    confusion = list(csv.reader((tmp_path / "run" / "confusion.csv").open()))
    assert sum(int(v) for row in confusion[1:] for v in row[1:]) == len(rows)


def test_the_known_answer_model_localises_the_world_parts_above_chance(compose_cfg, tmp_path):
    results, _ = evaluate(compose_cfg(["task=keypoints", "task.num_workers=0"]), RunContext(run_dir=tmp_path / "r"))
    assert results["pck"] > results["chance_pck"] + 0.25, (results["pck"], results["chance_pck"])


def test_bad_keypoint_options_are_one_line_errors(compose_cfg, tmp_path):
    from hydra.errors import ConfigCompositionException

    from descbench.core.errors import UserError

    for override, message in [
        ("task.mode=find", "Invalid value 'find', expected one of [localization, naming]"),
        ("task.radius_unit=cm", "Invalid value 'cm', expected one of [input, box]"),
    ]:
        with pytest.raises(ConfigCompositionException) as err:
            compose_cfg(FEW + [override])
        assert message in str(err.value.__cause__)
    for override, message in [
        ("task.template='the {part}'", "task.template='the {part}' has no {category}"),
        ("task.radius=0", "task.radius=0.0 must be a number > 0"),
    ]:
        with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")):
            evaluate(compose_cfg(FEW + [override]), RunContext(run_dir=tmp_path / "bad"))


def test_marking_bias_probe_records_shifts_with_intervals(compose_cfg, tmp_path):
    cfg = compose_cfg(["task=marking_bias", "task.num_workers=0", "task.resamples=1000"])
    results, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    module = objects["module"]
    probs = module.probabilities
    assert probs.shape == (results["num_images"], 3, len(module.phrases))
    assert torch.allclose(probs.sum(dim=2), torch.ones(probs.shape[:2], dtype=probs.dtype))
    negative = [i for i, p in enumerate(module.phrases) if p.kind == "negative"]
    shift = (probs[:, 1, negative].sum(1) - probs[:, 0, negative].sum(1)).mean().item()
    assert results["bias.negative.shift_circled_unmarked"] == pytest.approx(shift)
    low, high = (
        results["bias.negative.shift_circled_unmarked.ci_low"],
        results["bias.negative.shift_circled_unmarked.ci_high"],
    )
    assert low <= shift <= high
    rows = list(csv.DictReader((tmp_path / "run" / "per_image.csv").open()))
    assert len(rows) == results["num_images"] * 3 * len(module.phrases)
    assert {r["condition"] for r in rows} == {"unmarked", "circled", "control"}


@MULTI_PROCESS
@pytest.mark.slow
@pytest.mark.parametrize("task", ["keypoints", "marking_bias"])
def test_two_process_ddp_equals_one_process(tmp_path, task):
    extra = {"keypoints": ["dataset.builder.num_instances=13"], "marking_bias": ["task.resamples=1000"]}[task]
    runs = {}
    for name, ddp in {"one": [], "two": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]}.items():
        env = {"OMP_NUM_THREADS": "1"}
        proc = run_ddp_eval(
            [f"task={task}", "logger=none", "task.batch_size=2", *extra, *ddp],
            cwd=tmp_path,
            run_dir=tmp_path / name,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    one, two = runs["one"], runs["two"]
    keys = [k for k, v in one.items() if isinstance(v, float) and k not in ("overrides",)]
    assert keys
    for key in keys:
        assert two[key] == pytest.approx(one[key], abs=1e-9), key
    if task == "keypoints":
        assert one["pck"] == two["pck"]


def test_the_bias_probe_draws_the_marking_it_is_asked_for_and_records_it(compose_cfg, tmp_path):
    """Asked = done: a crop is drawn on the person and on the control (not a circle), and recorded as a crop."""
    cfg = compose_cfg(["task=marking_bias", "task.num_workers=0", "task.resamples=200", "visual_prompt=crop"])
    results, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "crop"))
    assert results["visual_prompt"] == "crop" and results["control"].startswith("crop on a region")
    images = objects["module"].probabilities.shape[0]
    circled = evaluate(
        compose_cfg(["task=marking_bias", "task.num_workers=0", "task.resamples=200"]),
        RunContext(run_dir=tmp_path / "c"),
    )[0]
    assert circled["visual_prompt"] == "circle" and circled["num_images"] == images
    # another marking shows the model other images: its probabilities differ
    assert results["bias.negative.circled.prob"] != circled["bias.negative.circled.prob"]
