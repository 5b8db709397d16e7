"""``task=classify``: classification by description (SPEC §2) — :mod:`.spec` (options, job), :mod:`.module`
(the LightningModule), :mod:`.outputs` (what a job writes), :mod:`.report` (its report section)."""

from descbench.core.measures import Measure
from descbench.tasks.definition import TaskDefinition, register_task

#: the option plotted on the x axis of the report's curves (averaged over, never a line of its own)
NUM_DESC = "describe.num_desc"

DEFINITION = register_task(
    TaskDefinition(
        name="classify",
        title="classification",
        spec="descbench.tasks.classify.spec.ClassifyTask",
        primary="top1",
        grouping=("describe.detailed", frozenset({NUM_DESC})),
        section="descbench.tasks.classify.report.section",
        dashboard="descbench.tasks.classify.dashboard.section",
        measures=(
            Measure("top1", "rate", "top-1", "higher", percent=True),
            Measure("top5", "rate", "top-5", "higher", percent=True),
            Measure("mean_per_class_acc", "statistic", "mean per-class acc.", "higher", percent=True),
            Measure("entropy", "mean", "entropy (nats)", "lower", digits=3),
            Measure("ece", "statistic", "ECE", "lower", percent=True),
            Measure("chance_top1", "reference", "chance top-1", percent=True),
            Measure("top5_k", "derived", "top-k of top-5", description="min(5, number of classes)"),
            Measure("ece_scale", "derived", "ECE scale", description="always the entropy scale"),
            Measure("num_samples", "count", "images"),
            Measure("num_classes", "count", "classes"),
            Measure("describe.num_texts", "count", "description texts"),
            Measure("per_class_acc", "table", "per-class accuracy"),
            Measure("num_evaluated", "count", "images scored", description="all but excluded classes'"),
            Measure("describe.stats.<stat>", "count", "description statistic", description="counts, fallbacks"),
            Measure("describe.excluded_classes", "bookkeeping", "excluded classes (indices)"),
            Measure(
                "describe.text_form",
                "derived",
                "text form",
                description="follows describe.detailed (and detailed_prefix): which-clause or as written",
            ),
            Measure("dataset.duplicate_class_names", "bookkeeping", "class names shared by several classes"),
            Measure("dataset.limit_fingerprint", "bookkeeping", "subset fingerprint"),
            Measure("dataset.limit_per_class_min", "count", "fewest images of a class in the subset"),
            Measure("dataset.limit_per_class_max", "count", "most images of a class in the subset"),
        ),
        position=0,
    )
)
