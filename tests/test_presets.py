"""Experiment presets compose to the study's layout."""

from descbench.config import compose_config


def _compose(overrides):
    return compose_config(overrides, return_hydra_config=True)


def test_prompt_options_preset_is_the_14_job_grid_with_llm_descriptions():
    cfg = _compose(["experiment=prompt_options"])
    assert cfg.describe._target_ == "descbench.llm.source.llm"
    assert dict(cfg.hydra.sweeper.params) == {"describe.detailed": "true,false", "num_desc": "range(1,8)"}


def test_demo_preset_is_the_offline_default():
    cfg = _compose(["experiment=demo"])
    assert cfg.dataset.name == "shapes" and cfg.backbone.model == "local-dir:pkg:descbench.world/model"
    assert cfg.describe._target_.endswith("sources.world")


def test_imagenet_preset_reads_descriptor_files():
    cfg = _compose(["experiment=imagenet_descriptions"])
    assert cfg.dataset.name == "imagenet" and cfg.backbone.model == "ViT-B-32" and cfg.backbone.pretrained == "openai"
    assert cfg.describe._target_.endswith("sources.file") and cfg.trainer.accelerator == "gpu"


def test_red_circle_preset_is_the_ensemble_with_subtract_and_two_backbones():
    cfg = _compose(["experiment=red_circle"])
    assert cfg.task.name == "rec" and cfg.task.subtract is True and cfg.task.negatives == 10
    assert list(cfg.visual_prompt) == ["circle", "grayscale_outside", "blur_outside"]
    assert cfg.backbone.model.startswith("local-dir:") and len(cfg.task.extra_backbones) == 1
