"""The REC marked-candidate cache: one file per (backbone, transform, visual prompt, data, precision)."""

import json

import pytest
import torch
from safetensors import safe_open

from descbench.core.backbone import load_backbone
from descbench.core.feature_cache import CandidateFeatureCache
from descbench.core.marking.engine import encode_group, group_by_image, prepare_group
from descbench.datasets.collages import Collages
from descbench.eval import RunContext, evaluate
from tests.conftest import MULTI_PROCESS, run_ddp_eval
from tests.test_rec_task import COLLAGES

TINY = [*COLLAGES, "dataset.builder.num_canvases=4", "task.batch_size=2"]
ENSEMBLE = ["visual_prompt=[circle,blur_outside]", "task.subtract=true", "task.negatives=2"]


@pytest.fixture
def forward_calls():
    """Batch sizes of every image forward of the tiny model (the instance the config builds)."""
    backbone = load_backbone("descbench-tiny", random_init=True, seed=0)
    calls: list[int] = []
    hook = backbone.model.visual.register_forward_hook(lambda m, inputs, out: calls.append(inputs[0].shape[0]))
    yield calls
    hook.remove()


@pytest.fixture
def opened_images(monkeypatch):
    """Image ids the collages are asked to load (for marking or for the example PNGs)."""
    opened: list[str] = []
    original = Collages.load_image
    monkeypatch.setattr(
        Collages, "load_image", lambda self, image_id: opened.append(image_id) or original(self, image_id)
    )
    return opened


def run(compose_cfg, tmp_path, name, overrides=()):
    cfg = compose_cfg([*TINY, "task.num_examples=0", *overrides])
    metrics, objects = evaluate(cfg, RunContext(run_dir=tmp_path / name))
    results = json.loads((tmp_path / name / "results.json").read_text())
    return metrics, objects, results, (tmp_path / name / "predictions.jsonl").read_text()


def cache_files(tmp_path) -> dict[str, float]:
    """Cache file name -> modification time."""
    return {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cache" / "candidate_features").glob("*.safetensors")}


def file_prompt(path) -> str:
    with safe_open(str(path), "pt") as handle:
        return json.loads(handle.metadata()["key"])["prompt"]


def test_cold_writes_one_file_per_prompt_warm_encodes_nothing_and_is_identical(
    compose_cfg, tmp_path, forward_calls, opened_images, caplog
):
    with caplog.at_level("INFO", logger="descbench"):
        cold_metrics, objects, cold, cold_rows = run(compose_cfg, tmp_path, "cold", ENSEMBLE)
    assert "candidate features: computing" in caplog.text
    groups = group_by_image(objects["dataset"].expressions)
    assert forward_calls == [len(g.boxes) * 2 for g in groups]
    files = cache_files(tmp_path)
    assert len(files) == 2
    # each file: one prompt's rows of every candidate in group order, equal to the forward's output
    module = objects["module"]
    backbone = module.backbones[0]
    dataset = objects["dataset"]
    expected = [
        encode_group(prepare_group(dataset.load_image(g.image_id), g.boxes, module.prompts, [backbone]), [backbone], 2)[
            0
        ]
        for g in groups
    ]
    for name in files:
        path = tmp_path / "cache" / "candidate_features" / name
        p = [s.key for s in module.prompts].index(file_prompt(path))
        with safe_open(str(path), "pt") as handle:
            features, offsets = handle.get_tensor("features"), handle.get_tensor("offsets")
        assert offsets.tolist() == [0, *torch.tensor([len(g.boxes) for g in groups]).cumsum(0).tolist()]
        assert torch.equal(features, torch.cat([e[p] for e in expected]))

    forward_calls.clear()
    opened_images.clear()
    caplog.clear()
    with caplog.at_level("INFO", logger="descbench"):
        warm_metrics, _, warm, warm_rows = run(compose_cfg, tmp_path, "warm", ENSEMBLE)
    assert "candidate features: cached" in caplog.text
    assert forward_calls == [] and opened_images == []  # no image opened, no forward call
    assert warm_metrics == cold_metrics
    assert {k: v for k, v in warm.items() if k.startswith("acc")} == {
        k: v for k, v in cold.items() if k.startswith("acc")
    }
    assert warm_rows == cold_rows  # bit-identical scores in fp32
    assert cache_files(tmp_path) == files  # nothing rewritten


def test_text_side_sweep_reuses_the_features(compose_cfg, tmp_path, forward_calls):
    run(compose_cfg, tmp_path, "a", ["visual_prompt=circle"])
    forward_calls.clear()
    _, _, results, _ = run(
        compose_cfg,
        tmp_path,
        "b",
        ["visual_prompt=circle", "task.template='the {expression}'", "task.subtract=true", "task.negatives=2"],
    )
    assert forward_calls == [] and results["subtract"] is True


@pytest.mark.parametrize(
    "change",
    [
        ["visual_prompt.circle.thickness=4"],  # visual prompt options
        ["backbone.seed=5"],  # another backbone (the tiny model's weights are seeded)
        ["dataset.builder.canvas_size=192"],  # same image ids, other boxes
        ["dataset.builder.seed=3"],  # other images
        ["dataset.limit=9"],  # fewer groups, same builder
    ],
    ids=["prompt-options", "backbone", "boxes", "data", "subset"],
)
def test_a_changed_key_part_is_a_miss(compose_cfg, tmp_path, caplog, change):
    run(compose_cfg, tmp_path, "first", ["visual_prompt=circle"])
    before = cache_files(tmp_path)
    caplog.clear()
    with caplog.at_level("INFO", logger="descbench"):
        run(compose_cfg, tmp_path, "second", ["visual_prompt=circle", *change])
    assert "candidate features: computing" in caplog.text
    after = cache_files(tmp_path)
    assert len(after) == 2 and {k: after[k] for k in before} == before  # a new file; the old one untouched


def test_ensemble_reuses_the_files_of_single_prompt_jobs(compose_cfg, tmp_path, forward_calls, caplog):
    for prompt in ("circle", "blur_outside"):
        run(compose_cfg, tmp_path, prompt, [f"visual_prompt={prompt}"])
    files = cache_files(tmp_path)
    forward_calls.clear()
    with caplog.at_level("INFO", logger="descbench"):
        metrics, objects, _, _ = run(compose_cfg, tmp_path, "ensemble", ENSEMBLE)
    assert "candidate features: cached" in caplog.text and forward_calls == []
    assert cache_files(tmp_path) == files
    # the scores equal a run without the cache (up to the batch composition of the forward: C vs 2C rows)
    _, _, uncached, _ = run(compose_cfg, tmp_path, "uncached", [*ENSEMBLE, "cache.features=false"])
    assert metrics["acc"] == pytest.approx(uncached["acc"])


def test_an_ensemble_with_one_new_prompt_computes_and_writes_only_that_file(compose_cfg, tmp_path, forward_calls):
    run(compose_cfg, tmp_path, "circle", ["visual_prompt=circle"])
    files = cache_files(tmp_path)
    forward_calls.clear()
    run(compose_cfg, tmp_path, "ensemble", ENSEMBLE)
    assert forward_calls  # blur_outside is missing: the images are encoded
    after = cache_files(tmp_path)
    assert len(after) == 2 and {k: after[k] for k in files} == files  # circle's file not rewritten


def test_cache_features_false_neither_reads_nor_writes(compose_cfg, tmp_path, forward_calls, caplog):
    run(compose_cfg, tmp_path, "warmup", ["visual_prompt=circle"])
    forward_calls.clear()
    (tmp_path / "cache" / "candidate_features").rename(tmp_path / "kept")
    with caplog.at_level("INFO", logger="descbench"):
        run(compose_cfg, tmp_path, "off", ["visual_prompt=circle", "cache.features=false"])
    assert forward_calls and "candidate features: computing" in caplog.text
    assert not (tmp_path / "cache" / "candidate_features").exists()
    # and with files present it does not read them
    (tmp_path / "kept").rename(tmp_path / "cache" / "candidate_features")
    forward_calls.clear()
    run(compose_cfg, tmp_path, "off2", ["visual_prompt=circle", "cache.features=false"])
    assert forward_calls


def test_key_and_file_checks(tmp_path):
    groups = [("a", [[0.0, 0.0, 4.0, 4.0], [4.0, 4.0, 2.0, 2.0]]), ("b", [[1.0, 1.0, 3.0, 3.0]])]
    parts = dict(backbone="m:random:0", transform="T@32", prompt="circle", dataset="d", precision="32-true")
    key = CandidateFeatureCache.key(groups=groups, **parts)
    moved = CandidateFeatureCache.key(groups=[groups[0], ("b", [[1.0, 1.0, 3.0, 3.5]])], **parts)
    reordered = CandidateFeatureCache.key(groups=groups[::-1], **parts)
    cache = CandidateFeatureCache(tmp_path)
    assert len({cache.path(k) for k in (key, moved, reordered)}) == 3
    assert cache.load(key) is None
    features = torch.randn(3, 8)
    with pytest.raises(ValueError, match="do not fit key"):
        cache.save(key, features[:2], torch.tensor([0, 2, 3]))
    cache.save(key, features, torch.tensor([0, 2, 3]))
    assert torch.equal(cache.load(key), features)
    cache.path(key).write_bytes(b"not a safetensors file")
    assert cache.load(key) is None  # unreadable: a miss, recomputed


@MULTI_PROCESS
@pytest.mark.slow
def test_two_process_cold_run_writes_the_one_process_files(tmp_path):
    """Under DDP the features are gathered to rank 0 in group order: the files equal a 1-process run's."""
    from safetensors.torch import load_file

    common = [*COLLAGES, "logger=none", "dataset.builder.num_canvases=7", "task.batch_size=2", *ENSEMBLE]
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
    runs = {}
    for name, cache, extra in [("two", "a", ddp), ("one", "b", []), ("two_warm", "a", ddp)]:
        # Lightning gives each of the 2 CPU processes 1 thread; the 1-process run matches it, or the forward
        # itself differs in the last bits (thread count, not the cache)
        env = {"DESCBENCH_CACHE_DIR": str(tmp_path / cache), "OMP_NUM_THREADS": "1"}
        proc = run_ddp_eval([*common, *extra], cwd=tmp_path, run_dir=tmp_path / name, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = (tmp_path / name / "predictions.jsonl").read_text()
    files = {c: sorted((tmp_path / c / "candidate_features").glob("*.safetensors")) for c in "ab"}
    assert len(files["a"]) == 2 and [p.name for p in files["a"]] == [p.name for p in files["b"]]
    for a, b in zip(files["a"], files["b"]):
        assert all(torch.equal(t, load_file(str(b))[k]) for k, t in load_file(str(a)).items())
    assert runs["two"] == runs["one"] == runs["two_warm"]


def test_the_data_part_of_the_key_ignores_where_the_reader_lives():
    """Moving a reader's module changes ``_target_``, never the cache key; its options do change it."""
    from descbench.tasks.rec.spec import dataset_source

    options = {"root": "/data/refcoco", "split": "val"}
    here = dataset_source("refcoco", {"_target_": "descbench.datasets.refer.load_refer", **options})
    moved = dataset_source("refcoco", {"_target_": "descbench.readers.refer.load_refer", **options})
    assert here == moved
    assert dataset_source("refcoco", {**options, "split": "testA"}) != here
    assert dataset_source("refcocog", options) != here
