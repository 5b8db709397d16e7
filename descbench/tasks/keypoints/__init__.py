"""``task=keypoints``: keypoint localisation and naming by marking points (the red-circle study) —
:mod:`.spec`, :mod:`.module`, :mod:`.outputs`, :mod:`.report`."""

from descbench.core.measures import Measure
from descbench.tasks.definition import TaskDefinition, register_task

DEFINITION = register_task(
    TaskDefinition(
        name="keypoints",
        title="keypoints",
        spec="descbench.tasks.keypoints.spec.KeypointTaskSpec",
        primary="pck",
        grouping=("visual_prompt", frozenset({"mode"})),
        section="descbench.tasks.keypoints.report.section",
        measures=(
            Measure("pck", "rate", "PCK", "higher", percent=True),
            Measure("pck.<part>", "rate", "PCK", "higher", percent=True),
            Measure("chance_pck", "reference", "chance PCK", percent=True),
            Measure("chance_pck.<part>", "reference", "chance PCK", percent=True),
            Measure("acc", "rate", "accuracy", "higher", percent=True),
            Measure("acc.<split>", "rate", "accuracy", "higher", percent=True, description="per part (naming)"),
            Measure("chance_acc", "reference", "chance accuracy", percent=True),
            Measure("acc_lr_merged", "rate", "naming acc. (left/right merged)", "higher", percent=True),
            Measure("chance_acc_lr_merged", "reference", "chance (left/right merged)", percent=True),
            Measure("num_instances", "count", "instances"),
            Measure("pck_reference", "derived", "PCK reference size"),
            Measure("num_keypoints", "count", "keypoints"),
            Measure("data.<stat>", "count", "data statistic"),
        ),
        position=2,
    )
)
