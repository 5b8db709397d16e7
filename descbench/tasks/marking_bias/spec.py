"""``task=marking_bias``: the options (this signature is the config's schema) and the job of one run."""

from __future__ import annotations

from typing import Annotated, Any

from descbench.core.backbone import Backbone
from descbench.core.choices import Count, Natural, Range
from descbench.core.errors import ConfigError
from descbench.core.marking.geometry import Geometry, GeometryMode
from descbench.core.marking.visual_prompts import PromptSpec
from descbench.datasets.person_sets import load_bias_phrases
from descbench.tasks.marking import build_marked_dataset, collate_groups, visual_prompts_of
from descbench.tasks.marking_bias.module import BiasImages, BiasTask
from descbench.tasks.runner import TaskJob


class BiasTaskSpec:
    """``task=marking_bias``: the marking-bias probe (the red-circle study's risk claim).

    CLIP's probabilities over category ``phrases`` (a YAML file ``{phrases: [{id, text, kind:
    neutral|negative}]}``; null: the shipped list) for each image unmarked, with the person marked
    (``visual_prompt``: one marking, a circle by default) and with the same marking on background that overlaps
    no person (the control, placed seeded by ``control_seed`` and the image's index). It measures a model's
    bias, not people. Shifts get a bootstrap interval (``confidence``, ``resamples``) over images;
    ``num_examples`` images are drawn unmarked | marked | control to ``examples/`` and W&B.
    """

    def __init__(
        self,
        phrases: str | None = None,
        image_processing: GeometryMode = GeometryMode.squash,
        control_seed: int = 0,
        confidence: Annotated[float, Range(gt=0, le=0.999999)] = 0.95,
        resamples: Annotated[int, Range(ge=100, integer=True)] = 10000,
        batch_size: Annotated[int, Count] = 8,
        num_workers: Annotated[int, Natural] = 2,
        pin_memory: bool = True,
        num_examples: Annotated[int, Natural] = 2,
    ) -> None:
        self.phrases = phrases
        self.geometry = Geometry(image_processing)
        self.control_seed, self.confidence, self.resamples = control_seed, confidence, resamples
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.num_examples = num_examples
        self.phrase_list = load_bias_phrases(phrases)  # read (and refused) before any model loads

    def check(self, cfg: Any) -> PromptSpec:
        """What the probe refuses in the config before any model loads; returns its marking."""
        return self.marking(cfg.get("visual_prompt"))

    @staticmethod
    def marking(visual_prompt: Any) -> PromptSpec:
        """The one marking drawn on the person and on the control (an ensemble has no single image to show)."""
        specs = visual_prompts_of(visual_prompt, "marking_bias")
        if len(specs) != 1 or specs[0].name == "none":
            raise ConfigError(
                f"task=marking_bias marks the person with one visual prompt, got {' + '.join(s.key for s in specs)}: "
                "choose one marking other than none (visual_prompt=circle, the study's)"
            )
        return specs[0]

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        from descbench.tasks.marking_bias.outputs import write_bias_outputs

        marking = self.check(cfg)
        phrases = self.phrase_list
        dataset = build_marked_dataset(cfg)
        images = BiasImages(dataset, marking, backbones[0], self.control_seed, self.geometry)
        if not len(images):
            raise ConfigError(
                f"no image of {dataset.name} has room for a control circle that overlaps no person: "
                "use images with more background"
            )
        module = BiasTask(backbones[0], phrases)
        return TaskJob(
            module=module,
            images=images,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_groups,
            write_outputs=lambda metrics: write_bias_outputs(cfg, context, module, images, marking, self, metrics),
            objects={"dataset": dataset},
        )
