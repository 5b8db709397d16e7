"""Experiment presets compose to the study's layout."""

from omegaconf import OmegaConf

from descbench.shell.config import compose_config


def _compose(overrides):
    return compose_config(overrides, return_hydra_config=True)


def test_prompt_options_preset_is_the_14_job_grid_with_llm_descriptions():
    cfg = _compose(["experiment=prompt_options"])
    assert cfg.describe._target_ == "descbench.descriptions.llm.source.llm"
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
    assert cfg.task._target_.endswith("RecTaskSpec") and cfg.task.subtract is True and cfg.task.negatives == 10
    assert list(cfg.visual_prompt) == ["circle", "grayscale_outside", "blur_outside"]
    assert cfg.backbone.model.startswith("local-dir:") and len(cfg.task.extra_backbones) == 1


def test_red_circle_paper_preset_is_the_papers_protocol():
    cfg = _compose(["experiment=red_circle_paper"])
    assert cfg.backbone.model == "ViT-L-14-336" and cfg.backbone.pretrained == "openai"
    assert [b.model for b in cfg.task.extra_backbones] == ["RN50x16"]
    assert list(cfg.visual_prompt) == ["circle", "grayscale_outside", "blur_outside"]
    assert cfg.visual_prompt.blur_outside.sigma == 100.0 and cfg.visual_prompt.blur_outside.region == "ellipse"
    assert cfg.task.subtract and cfg.task.negatives == 500 and cfg.task.lowercase
    assert cfg.task.image_processing == "squash" and cfg.dataset.name == "rec_refer"
    # the published numbers were measured on a detector's proposals: the preset has no default for them
    assert OmegaConf.is_missing(cfg.dataset.builder, "proposals")
    world = _compose(["experiment=red_circle_paper_world"])
    assert world.dataset.name == "rec_shapes" and world.backbone.model.startswith("local-dir:")
    assert list(world.task.extra_backbones) == [] and world.task.negatives == 500


def test_keypoint_and_bias_presets_compose_on_the_studys_main_model():
    cfg = _compose(["experiment=keypoints_cub", "dataset.builder.root=/data/cub"])
    assert cfg.task._target_.endswith("KeypointTaskSpec") and cfg.dataset.name == "keypoints_cub"
    assert cfg.backbone.model == "ViT-L-14-336"
    cfg = _compose(["experiment=marking_bias_coco"])
    assert cfg.task._target_.endswith("BiasTaskSpec") and cfg.dataset.builder.min_area == 4096
    assert cfg.backbone.model == "ViT-L-14-336"
    cfg = _compose(["experiment=keypoints_faces", "dataset.builder.root=/data/faces"])
    assert cfg.task._target_.endswith("KeypointTaskSpec") and cfg.dataset.builder._target_.endswith(
        "load_facesynthetics_keypoints"
    )
    assert cfg.backbone.model == "ViT-L-14-336" and cfg.backbone.pretrained == "openai"
    cfg = _compose(["experiment=marking_bias_faces", "dataset.builder.root=/data/faces"])
    assert cfg.task._target_.endswith("BiasTaskSpec") and cfg.dataset.builder._target_.endswith(
        "load_facesynthetics_persons"
    )
    assert cfg.backbone.model == "ViT-L-14-336"


def test_study_preset_scores_sentences_through_the_rule_and_excludes_by_point():
    cfg = _compose(["experiment=prompt_options"])
    assert cfg.describe.detailed_prefix == "rule" and cfg.describe.exclude_wrong_count == "point"
    for name in ("menon_imagenet", "menon_cub", "imagenet_descriptions"):
        assert _compose([f"experiment={name}"]).describe.detailed_prefix == "rule"


def test_the_llm_defaults_are_valid_choices_not_yaml_booleans():
    """YAML reads a bare `off` as false: the default must arrive as the choice's name."""
    from descbench.core.description_text import sentence_form
    from descbench.descriptions.llm.generate import exclusion_choice

    cfg = _compose(["describe=llm"])
    assert cfg.describe.exclude_wrong_count == "off" and exclusion_choice(cfg.describe.exclude_wrong_count) == "off"
    assert cfg.describe.detailed_prefix == "none" and sentence_form(cfg.describe.detailed_prefix) == "as_written"
    assert _compose(["describe=file"]).describe.detailed_prefix == "none"
