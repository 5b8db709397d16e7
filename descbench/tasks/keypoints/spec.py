"""``task=keypoints``: the options (this signature is the config's schema) and the job of one run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from descbench.core.backbone import Backbone
from descbench.core.choices import Count, Natural, Positive
from descbench.core.description_text import check_template
from descbench.core.marking.geometry import Geometry, GeometryMode
from descbench.core.marking.points import DEFAULT_ALPHA, KeypointMode, RadiusUnit
from descbench.tasks.keypoints.module import KeypointImages, KeypointTask
from descbench.tasks.marking import build_marked_dataset, collate_groups, visual_prompts_of
from descbench.tasks.runner import TaskJob


class KeypointTaskSpec:
    """``task=keypoints``: keypoints by marking points (the red-circle study).

    Every visible annotated keypoint of an instance is marked in turn (a circle of ``radius`` around it;
    ``visual_prompt=crop`` cuts that box out; ``none`` is the control) and scored against ``template`` filled
    with the part and the category. ``mode=localization``: for each visible part, the best-scoring candidate
    point (PCK@``alpha`` of max(box w, h)); ``mode=naming``: each marked point classified among its category's
    part names. ``radius_unit``: ``input`` (pixels at model input) or ``box`` (a fraction of max(box w, h)).
    ``image_processing``: how the marked image reaches the model's square input (squash | pad | crop).
    """

    def __init__(
        self,
        mode: KeypointMode = KeypointMode.localization,
        template: str = "a photo of the {part} of a {category}",
        radius: Annotated[float, Positive] = 0.25,
        radius_unit: RadiusUnit = RadiusUnit.box,
        alpha: Annotated[float, Positive] = DEFAULT_ALPHA,
        image_processing: GeometryMode = GeometryMode.squash,
        extra_backbones: Sequence[Any] = (),
        batch_size: Annotated[int, Count] = 8,
        num_workers: Annotated[int, Natural] = 2,
        pin_memory: bool = True,
        num_examples: Annotated[int, Natural] = 8,
    ) -> None:
        self.mode = KeypointMode.parse(mode, "task.mode")
        self.template = check_template(
            template, fields=("part", "category"), required=("part", "category"), key="task.template"
        )
        self.radius, self.radius_unit, self.alpha = (
            float(radius),
            RadiusUnit.parse(radius_unit, "task.radius_unit"),
            float(alpha),
        )
        self.geometry = Geometry(image_processing)
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.num_examples = num_examples

    def prepare(self, cfg, backbones: list[Backbone], context) -> TaskJob:
        from descbench.tasks.keypoints.outputs import write_keypoint_outputs

        prompts = visual_prompts_of(cfg.get("visual_prompt"), "keypoints")
        dataset = build_marked_dataset(cfg)
        images = KeypointImages(dataset, prompts, backbones, self.radius, self.radius_unit, self.geometry)
        module = KeypointTask(
            backbones, dataset, images.candidates, prompts, self.mode, self.template, self.alpha, cfg.seed
        )
        return TaskJob(
            module=module,
            images=images,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            collate_fn=collate_groups,
            write_outputs=lambda metrics: write_keypoint_outputs(cfg, context, module, images, self, metrics),
            objects={"dataset": dataset},
        )
