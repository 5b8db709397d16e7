"""Feature caches: hit, miss, invalidation, concurrent writers, bit-identical results."""

import json
import subprocess
import sys

import torch

from descbench.core.feature_cache import ImageFeatureCache, TextFeatureCache
from descbench.eval import RunContext, evaluate
from tests.conftest import ROOT

PHOTOS = ["experiment=photos", "dataset.builder.views=2"]
KEY = dict(backbone="m:1", dataset="d", split="test", transform="T", sample_ids=["a", "b"], precision="32-true")


def length_encoder():
    """A stand-in text encoder (each text's embedding is its length, 3 times) and the calls it received."""
    calls = []

    def encoder(texts):
        calls.append(list(texts))
        return torch.stack([torch.full((3,), float(len(t))) for t in texts])

    return calls, encoder


def test_image_cache_hit_miss_and_invalidation(tmp_path):
    cache = ImageFeatureCache(tmp_path)
    key = ImageFeatureCache.key(**KEY)
    assert cache.load(key) is None
    cache.save(key, torch.ones(2, 4), torch.tensor([0, 1]))
    features, labels = cache.load(key)
    assert torch.equal(features, torch.ones(2, 4)) and labels.tolist() == [0, 1]
    for part, value in [
        ("transform", "T2"),
        ("backbone", "m:2"),
        ("sample_ids", ["a", "c"]),
        ("split", "val"),
        ("precision", "bf16-mixed"),
    ]:
        assert cache.load(ImageFeatureCache.key(**{**KEY, part: value})) is None, part


def test_half_written_file_is_a_miss(tmp_path):
    cache = ImageFeatureCache(tmp_path)
    key = ImageFeatureCache.key(**KEY)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{"features"')
    assert cache.load(key) is None


def test_text_cache_encodes_each_string_once(tmp_path):
    calls, encoder = length_encoder()

    cache = TextFeatureCache(tmp_path, "m:1")
    first = cache.encode(["a", "bb", "a"], encoder)
    assert calls == [["a", "bb"]] and first[:, 0].tolist() == [1.0, 2.0, 1.0]
    again = TextFeatureCache(tmp_path, "m:1").encode(["bb", "ccc"], encoder)
    assert calls[-1] == ["ccc"] and again[:, 0].tolist() == [2.0, 3.0]
    TextFeatureCache(tmp_path, "m:2").encode(["bb"], encoder)
    assert calls[-1] == ["bb"]  # another backbone: another cache


def test_results_identical_with_and_without_cache(compose_cfg, tmp_path):
    outputs = {}
    for name, overrides in {"off": ["cache.features=false", "cache.text=false"], "cold": [], "warm": []}.items():
        cfg = compose_cfg(PHOTOS + ["num_desc=2", *overrides])
        metrics, objects = evaluate(cfg, RunContext(run_dir=tmp_path / name))
        outputs[name] = (
            json.loads((tmp_path / name / "results.json").read_text()),
            (tmp_path / name / "predictions.csv").read_text(),
        )
        assert objects["module"].features_input == (name == "warm")
    for name in ("cold", "warm"):
        for key in ("top1", "top5", "mean_per_class_acc", "entropy", "ece", "per_class_acc"):
            assert outputs[name][0][key] == outputs["off"][0][key], (name, key)
        assert outputs[name][1] == outputs["off"][1]


def test_two_processes_starting_together_get_correct_features(tmp_path):
    script = (
        "import sys, torch; sys.path.insert(0, %r)\n"
        "from descbench.core.feature_cache import ImageFeatureCache\n"
        "c = ImageFeatureCache(%r); k = ImageFeatureCache.key(backbone='m', dataset='d', split='s', transform='t',"
        " sample_ids=[str(i) for i in range(4000)], precision='p')\n"
        "for _ in range(20):\n"
        "    got = c.load(k)\n"
        "    assert got is None or torch.equal(got[0], torch.arange(4000*64.).view(4000, 64)), 'corrupt read'\n"
        "    c.save(k, torch.arange(4000*64.).view(4000, 64), torch.zeros(4000))\n"
        "print('ok')\n"
    ) % (str(ROOT), str(tmp_path))
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert all(o[0].strip() == "ok" for o in outs)


def test_text_cache_encodes_the_texts_ahead_once_with_a_miss(tmp_path):
    calls, encoder = length_encoder()

    cache = TextFeatureCache(tmp_path, "m:1")
    first = cache.encode(["a", "bb"], encoder, ahead=["ccc", "a", "dddd", "ccc"])
    # the job's own strings in a call of their own, then the uncached texts ahead, each once
    assert calls == [["a", "bb"], ["ccc", "dddd"]] and cache.encoded_last == 4
    assert first[:, 0].tolist() == [1.0, 2.0]
    later = TextFeatureCache(tmp_path, "m:1").encode(["dddd", "a", "ccc"], encoder, ahead=["eeeee"])
    assert len(calls) == 2 and later[:, 0].tolist() == [4.0, 1.0, 3.0]  # all cached: nothing encoded, not even ahead
    TextFeatureCache(tmp_path, "m:1").encode(["ffffff"], encoder, ahead=["eeeee", "bb"])
    assert calls[2:] == [["ffffff"], ["eeeee"]]


def test_world_source_renders_the_descriptors_past_num_desc_ahead():
    from descbench.descriptions.sources import world

    native = {"words": {"cat": ["fur", "whiskers", "a tail"], "dog": ["a snout"]}, "sentences": {}}
    out = world(["cat", "dog"], num_desc=1, native=native, allow_fewer=True)
    assert out.texts == [["cat, which has fur"], ["dog, which is a snout"]]
    assert out.ahead == ["cat, which has whiskers", "cat, which is a tail"]  # the same rule as the scored texts


def test_a_sweep_job_encodes_the_other_num_desc_ahead_and_a_single_job_does_not(compose_cfg, tmp_path):
    def cached_texts(cfg, backbone):
        rows, _ = TextFeatureCache(cfg.paths.cache_dir, backbone.identity)._read()
        return set(rows)

    single = compose_cfg(PHOTOS + ["num_desc=1", f"paths.cache_dir={tmp_path / 'one'}"])
    _, objects = evaluate(single, RunContext(run_dir=tmp_path / "single"))
    own = {t for texts in objects["module"].descriptions.texts for t in texts}
    assert cached_texts(single, objects["backbone"]) == own  # a job alone encodes its own texts only

    sweep = [f"paths.cache_dir={tmp_path / 'sweep'}"]
    _, objects = evaluate(compose_cfg(PHOTOS + ["num_desc=1", *sweep]), RunContext(tmp_path / "s1", multirun=True))
    descriptions = objects["module"].descriptions
    assert descriptions.ahead and cached_texts(compose_cfg(PHOTOS + sweep), objects["backbone"]) == own | set(
        descriptions.ahead
    )
    # the sweep's next job (more descriptors per class) finds every text it scores in the cache
    calls = []
    backbone = objects["backbone"]
    original = backbone.encode_texts
    backbone.encode_texts = lambda texts, **kw: calls.append(list(texts)) or original(texts, **kw)
    try:
        _, objects = evaluate(compose_cfg(PHOTOS + ["num_desc=3", *sweep]), RunContext(tmp_path / "s2", multirun=True))
    finally:
        backbone.encode_texts = original
    assert objects["backbone"] is backbone  # the patched encoder is the one the job had (the loaded model is shared)
    assert calls == [] and max(objects["module"].descriptions.counts) == 3
