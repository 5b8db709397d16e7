"""``task=rec``: referring expressions with visual prompts (SPEC §4) — :mod:`.spec` (options, job, cache),
:mod:`.module` (the LightningModule and its test sets), :mod:`.outputs`, :mod:`.report`."""

from descbench.core.measures import Measure
from descbench.tasks.definition import TaskDefinition, register_task

DEFINITION = register_task(
    TaskDefinition(
        name="rec",
        title="REC",
        spec="descbench.tasks.rec.spec.RecTaskSpec",
        primary="acc",
        section="descbench.tasks.rec.report.section",
        dashboard="descbench.tasks.rec.dashboard.section",
        measures=(
            Measure("acc", "rate", "accuracy", "higher", percent=True),
            Measure("acc.<split>", "rate", "accuracy", "higher", percent=True, description="per split"),
            Measure("chance_acc", "reference", "chance accuracy", percent=True),
            Measure("acc_no_relations", "rate", "accuracy without relations", "higher", percent=True),
            Measure("acc_no_relations.<split>", "rate", "accuracy without relations", "higher", percent=True),
            Measure("relations.parsed_share", "count", "expressions with a relation parsed", digits=3),
            Measure("relations.changed_share", "count", "picks the relations changed", digits=3),
            Measure("relations.rule_share.<rule>", "count", "picks by resolver rule", digits=3),
            Measure("num_expressions", "count", "expressions"),
            Measure("mean_candidates", "count", "candidates per expression", digits=2),
            Measure("min_candidates", "count", "fewest candidates of an expression"),
            Measure("max_candidates", "count", "most candidates of an expression"),
            Measure(
                "upper_bound",
                "reference",
                "upper bound",
                percent=True,
                description="share of expressions where some candidate has IoU > 0.5 with a gold box",
            ),
            Measure("upper_bound.<split>", "reference", "upper bound", percent=True),
            Measure("proposals.images", "count", "images in the proposals file"),
            Measure("proposals.boxes", "count", "boxes in the proposals file"),
            Measure("data.<stat>", "count", "data statistic", description="boxes dropped/clipped, ..."),
            Measure("correct_rule", "derived", "correct when", description="IoU > 0.5 with a gold box"),
            Measure("backbone_scores", "derived", "backbone scores", description="how backbone scores combine"),
        ),
        position=1,
    )
)
