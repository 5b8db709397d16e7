"""End to end through Hydra, Lightning and torchmetrics on the embedded photos with the tiny model."""

import json
import struct

import pytest
import torch

from descbench.eval import RunContext, evaluate
from tests.conftest import run_eval

PHOTOS = ["experiment=photos", "dataset.builder.views=2"]


def test_evaluate_writes_results(compose_cfg, tmp_path):
    cfg = compose_cfg(PHOTOS + ["num_desc=3"])
    metrics, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    for key in ("top1", "top5", "mean_per_class_acc", "entropy", "ece"):
        assert 0.0 <= results[key] <= (10.0 if key == "entropy" else 1.0)
        assert results[key] == pytest.approx(metrics[key])
    assert results["entropy_scale"] == "minmax" and results["describe.num_desc"] == 3
    assert results["weights"].startswith("random") and "random weights" in results["note"]
    assert len(results["per_class_acc"]) == 12
    predictions = (tmp_path / "run" / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 24
    # top-1 recomputed from the written predictions equals the metric
    correct = [int(line.rsplit(",", 1)[1]) for line in predictions[1:]]
    assert sum(correct) / len(correct) == pytest.approx(results["top1"])
    # the mean entropy equals the mean of the per-sample entropies (of the scaled logits)
    entropies = [float(line.split(",")[-2]) for line in predictions[1:]]
    assert sum(entropies) / len(entropies) == pytest.approx(results["entropy"], abs=1e-5)


def test_metrics_equal_a_direct_computation(compose_cfg, tmp_path):
    """The Lightning loop gives the same top-1 as encoding and scoring by hand."""
    cfg = compose_cfg(PHOTOS + ["num_desc=2", "task.batch_size=5"])
    metrics, objects = evaluate(cfg, RunContext(run_dir=tmp_path / "run"))
    module, dataset, backbone = objects["module"], objects["dataset"], objects["backbone"]
    with torch.no_grad():
        images = torch.stack([dataset[i][0] for i in range(len(dataset))])
        labels = torch.tensor([dataset[i][1] for i in range(len(dataset))])
        feats = backbone.encode_images(images)
        scores = []
        for texts in module.descriptions.texts:
            scores.append((feats @ backbone.encode_texts(texts).T).mean(1))
        pred = torch.stack(scores, 1).argmax(1)
    assert metrics["top1"] == pytest.approx((pred == labels).float().mean().item())


def test_multirun_with_inclusive_range(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_eval(
        ["-m", *PHOTOS, "logger=none", "describe.detailed=true,false", "num_desc=1..2", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted(sweep.rglob("results.json"))
    assert len(runs) == 4
    seen = {(r["describe.detailed"], r["describe.num_desc"]) for r in (json.loads(p.read_text()) for p in runs)}
    assert seen == {(True, 1), (True, 2), (False, 1), (False, 2)}


def test_unknown_group_option_is_named(tmp_path):
    proc = run_eval(["dataset=imagenett", "logger=none"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "Could not find 'dataset/imagenett'" in proc.stderr and "photos" in proc.stderr


@pytest.mark.parametrize(
    "value,message",
    [
        ("0", "error: num_desc must be an integer >= 1, got 0"),
        ("abc", "Value 'abc' of type 'str' could not be converted to Integer full_key: num_desc"),  # while composing
    ],
)
def test_bad_num_desc(tmp_path, value, message):
    proc = run_eval([*PHOTOS, "logger=none", f"num_desc={value}", f"hydra.run.dir={tmp_path / 'r'}"], cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_dataset_path_names_path_and_layout(compose_cfg, tmp_path):
    cfg = compose_cfg(
        ["dataset=imagenet", f"dataset.builder.root={tmp_path / 'nowhere'}", "backbone=tiny", "describe=classname"]
    )
    with pytest.raises(
        Exception, match=r"folder not found: .*nowhere/val \(expected layout: <root>/val/<wnid>/\*.JPEG"
    ):
        evaluate(cfg, RunContext(run_dir=tmp_path / "run"))


def test_corrupt_image_is_named(tmp_path):
    root = tmp_path / "folder"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        from PIL import Image

        Image.new("RGB", (8, 8), (200, 0, 0)).save(root / cls / "ok.png")
    (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"garbage")
    proc = run_eval(
        [
            "dataset=imagefolder",
            f"dataset.builder.root={root}",
            "backbone=tiny",
            "describe=classname",
            "logger=none",
            f"hydra.run.dir={tmp_path / 'r'}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-1500:]
    assert "broken.png" in proc.stderr and "error: " in proc.stderr


def test_checkpoint_that_does_not_match_the_architecture(compose_cfg, tmp_path):
    from descbench.core.backbone import BackboneError, load_backbone

    other = load_backbone("descbench-tiny", random_init=True)
    state = {k: v for k, v in other.model.state_dict().items() if not k.startswith("visual.")}
    state["visual.unexpected"] = torch.zeros(3)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(BackboneError, match=r"checkpoint .*wrong.pt does not match the architecture descbench-tiny"):
        load_backbone("descbench-tiny", pretrained=str(path))


def test_checkpoint_saved_by_a_test_loads_and_is_identified(tmp_path):
    from descbench.core.backbone import load_backbone

    source = load_backbone("descbench-tiny", random_init=True, seed=5)
    path = tmp_path / "tiny.pt"
    torch.save(source.model.state_dict(), path)
    loaded = load_backbone("descbench-tiny", pretrained=str(path))
    assert loaded.weights == "pretrained" and loaded.identity.startswith("descbench-tiny:")
    x = torch.zeros(1, 3, 64, 64)
    assert torch.allclose(loaded.encode_images(x), source.encode_images(x))


def test_named_model_without_weights_is_refused():
    from descbench.core.backbone import BackboneError, load_backbone

    with pytest.raises(BackboneError, match="backbone 'ViT-B-32' has no weights"):
        load_backbone("ViT-B-32")
