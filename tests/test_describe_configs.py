"""The describe and dataset configs and the description presets compose as documented."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

MENON = ["imagenet", "cub", "dtd", "eurosat", "food101", "pets", "places365"]
NATIVE = {"words": {"cat": ["fur", "whiskers"], "dog": ["paws", "a tail"]}, "sentences": {"cat": ["A."], "dog": ["B."]}}


def test_prompt_options_preset_uses_the_study_bank(compose_cfg):
    cfg = compose_cfg(["experiment=prompt_options"])
    assert cfg.describe.bank == "study" and cfg.describe.num_examples == 2
    assert cfg.describe._target_ == "descbench.descriptions.llm.source.llm" and cfg.describe.on_empty == "error"


@pytest.mark.parametrize("name", MENON)
def test_menon_presets_are_the_published_setting(compose_cfg, name):
    cfg = compose_cfg([f"experiment=menon_{name}"])
    d = cfg.describe
    assert d._target_.endswith("sources.file") and (d.truncate, d.rule, d.empty, d.names) == (
        False,
        "faithful",
        "menon",
        "key",
    )
    assert cfg.task.aggregation == "score_mean" and cfg.backbone.model == "ViT-B-32"
    assert d.template == ("{classname}, {descriptor}." if name == "imagenet" else "{classname}, {descriptor}")
    assert cfg.dataset.name == name
    if name == "dtd":
        assert cfg.dataset.builder.split == "val"


def test_imagenet_descriptions_equals_menon_imagenet(compose_cfg):
    a, b = compose_cfg(["experiment=imagenet_descriptions"]), compose_cfg(["experiment=menon_imagenet"])
    assert a.describe == b.describe and a.dataset == b.dataset and a.task == b.task


@pytest.mark.parametrize("source", ["waffle", "swapped", "shuffled"])
def test_controls_take_their_base_as_a_partial(compose_cfg, source):
    cfg = compose_cfg([f"describe={source}", "num_desc=2"])
    assert cfg.describe.base._partial_ is True and cfg.describe.reps == 1
    out = instantiate(cfg.describe, classes=["cat", "dog"], native=NATIVE, _convert_="all")
    assert out.source == source and out.options["base"] == "world" and out.counts == [2, 2]


def test_waffle_defaults_are_waffleclip(compose_cfg):
    d = compose_cfg(["describe=waffle"]).describe
    assert (d.kind, d.shared, d.count, d.reps) == ("both", True, None, 1)


def test_file_and_world_defaults(compose_cfg):
    f = compose_cfg(["describe=file"]).describe
    assert OmegaConf.is_missing(f, "path")  # required: check_config names it before anything loads
    assert (f.key, f.truncate, f.allow_fewer, f.empty, f.names) == (None, False, False, "classname", "dataset")
    w = compose_cfg(["describe=world"]).describe
    assert w.allow_fewer is False


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "dtd", "eurosat", "flowers102", "food101", "pets"])
def test_torchvision_dataset_configs_use_curated_names(compose_cfg, name):
    cfg = compose_cfg([f"dataset={name}"])
    assert cfg.dataset.builder.names == "curated" and cfg.dataset.limit is None and cfg.dataset.limit_seed == 0
