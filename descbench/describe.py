"""``python -m descbench.describe``: generate (or top up) the description cache for a dataset's classes.

    python -m descbench.describe dataset=imagenet describe.detailed=true num_desc=5
    python -m descbench.describe -m describe.detailed=true,false num_desc=1..7
    python -m descbench.describe describe.classes=names.txt          # a plain class list, no images
    python -m descbench.describe describe.bank=study num_desc=4 describe.dry_run=true

Same config groups and prompt options as ``descbench.eval`` (``describe=llm`` by default);
writes the ``{class: [descriptor, ...]}`` file and ``descriptions.json`` (prompts, raw
answers) to the run dir. The evaluation then finds everything in the cache.
``describe.dry_run=true`` prints the exact prompt of the first class and exits: no backend
is built, no model loaded or called.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger("descbench")


def load_classes(cfg: DictConfig) -> tuple[list[str], list[str] | None, str]:
    """``(class names, class ids or None, where they come from)``: ``describe.classes`` (a plain list) or the dataset.

    No image is read or encoded.
    """
    from descbench.descriptions.llm.source import read_class_list
    from descbench.shell.config import build

    listed = cfg.describe.get("classes")
    if listed:
        return read_class_list(listed), None, f"class list {listed}"
    dataset = build(cfg.dataset.builder, transform=None)
    return list(dataset.classes), getattr(dataset, "class_ids", None), str(cfg.dataset.name)


def pregenerate(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Build the configured description set (generating cache misses), export it; returns a summary.

    With ``describe.dry_run=true``: print the prompt of the first class and return without a backend.
    """
    from descbench.core.errors import UserError
    from descbench.core.files import write_atomic, write_error_reason
    from descbench.core.results import json_text
    from descbench.descriptions.llm.generate import export_descriptors
    from descbench.descriptions.llm.source import dry_run_prompt
    from descbench.shell.config import build_then_call

    classes, class_ids, origin = load_classes(cfg)
    if cfg.describe.get("dry_run"):
        prompt = dry_run_prompt(cfg.describe, classes[0])
        print(f"# dry run: the prompt for {classes[0]!r} (1 of {len(classes)} classes of {origin}); no model called")
        print(prompt)
        return {"dataset": origin, "classes": len(classes), "dry_run": True, "prompt": prompt}
    run_dir = Path(run_dir or cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # describe.export, or descriptors.json in the run dir: the {class: [descriptor, ...]} file
    export = Path(cfg.describe.get("export") or run_dir / "descriptors.json")
    kwargs: dict[str, Any] = {"classes": classes}
    if class_ids is not None:
        kwargs["class_ids"] = class_ids
    descriptions = build_then_call(cfg.describe, **kwargs)
    if not cfg.describe.get("export"):
        export_descriptors(descriptions, export)
    try:
        write_atomic(run_dir / "descriptions.json", json_text(descriptions.to_json()))
    except OSError as err:
        raise UserError(
            f"cannot write descriptions.json in {run_dir} ({write_error_reason(err)}): choose another hydra.run.dir"
        ) from None
    meta = descriptions.meta
    summary = {
        "dataset": origin,
        "classes": len(classes),
        "cached": meta.get("num_cached"),
        "generated": meta.get("num_generated"),
        "fallback": descriptions.stats.get("num_fallback"),
        "export": str(export),
    }
    print(
        f"{summary['dataset']}: {summary['classes']} classes, {summary['cached']} cached, "
        f"{summary['generated']} generated, {summary['fallback']} fell back to the class name -> {export}"
    )
    return summary


def _main(cfg: DictConfig) -> None:
    from descbench.core.errors import UserError
    from descbench.eval import report_user_error

    try:
        pregenerate(cfg)
    except UserError as err:
        report_user_error(err, None)
        sys.exit(2)


def main() -> None:
    from descbench.shell.config import run_entry

    run_entry(_main, "generate")


if __name__ == "__main__":
    main()
