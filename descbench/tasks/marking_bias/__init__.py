"""``task=marking_bias``: the marking-bias probe (the red-circle study's risk claim) — :mod:`.spec`,
:mod:`.module`, :mod:`.outputs`, :mod:`.report`."""

from descbench.core.measures import Measure
from descbench.tasks.definition import TaskDefinition, register_task

DEFINITION = register_task(
    TaskDefinition(
        name="marking_bias",
        title="marking bias",
        spec="descbench.tasks.marking_bias.spec.BiasTaskSpec",
        primary="bias.negative.shift_circled_unmarked",
        section="descbench.tasks.marking_bias.report.section",
        measures=(
            Measure("bias.<phrase>.<condition>.prob", "mean", "mean probability", digits=4),
            Measure("bias.<phrase>.shift_circled_unmarked", "mean", "shift circled - unmarked", digits=4),
            Measure("bias.<phrase>.shift_circled_control", "mean", "shift circled - control", digits=4),
            Measure("num_images_skipped", "count", "images without room for a control circle"),
            Measure("bias_resamples", "derived", "bootstrap resamples"),
            Measure("bias_confidence", "derived", "interval confidence"),
        ),
        position=3,
    )
)
