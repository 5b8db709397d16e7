"""``python -m descbench.describe``: generate (or top up) the description cache for a dataset's classes.

    python -m descbench.describe dataset=imagenet describe.detailed=true num_desc=5
    python -m descbench.describe -m describe.detailed=true,false num_desc=1..7

Same config groups and prompt options as ``descbench.eval`` (``describe=llm`` by default);
writes the ``{class: [descriptor, ...]}`` file and ``descriptions.json`` (prompts, raw
answers) to the run dir. The evaluation then finds everything in the cache.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger("descbench")


def load_classes(cfg: DictConfig) -> list[str]:
    """The class names of the configured dataset (no image is encoded)."""
    from hydra.utils import instantiate

    dataset = instantiate(cfg.dataset.builder, transform=None)
    return list(dataset.classes)


def pregenerate(cfg: DictConfig, run_dir: Path | None = None) -> dict[str, Any]:
    """Build the configured description set (generating cache misses), export it; returns a summary."""
    from hydra.utils import instantiate

    from descbench.llm.generate import export_descriptors
    from descbench.results import atomic_write_text

    classes = load_classes(cfg)
    descriptions = instantiate(cfg.describe, classes=classes, _convert_="all")
    run_dir = Path(run_dir or cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    export = Path(cfg.export) if cfg.get("export") else run_dir / "descriptors.json"
    export_descriptors(descriptions, export)
    atomic_write_text(run_dir / "descriptions.json", json.dumps(descriptions.to_json(), indent=2))
    meta = descriptions.meta
    summary = {
        "dataset": cfg.dataset.name,
        "classes": len(classes),
        "cached": meta.get("num_cached"),
        "generated": meta.get("num_generated"),
        "fallback": meta.get("num_fallback"),
        "export": str(export),
    }
    print(
        f"{summary['dataset']}: {summary['classes']} classes, {summary['cached']} cached, "
        f"{summary['generated']} generated, {summary['fallback']} fell back to the class name -> {export}"
    )
    return summary


def _main(cfg: DictConfig) -> None:
    from hydra.errors import InstantiationException

    from descbench.eval import _user_errors
    errors = _user_errors()
    try:
        try:
            pregenerate(cfg)
        except InstantiationException as err:  # Hydra wraps what the source raises
            if isinstance(err.__cause__, errors):
                raise err.__cause__ from None
            raise
    except errors as err:
        log.error("%s", err)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    import hydra

    from descbench.cli import prepare_argv

    prepare_argv()
    config_dir = str(Path(__file__).resolve().parent.parent / "conf")
    hydra.main(version_base="1.3", config_path=config_dir, config_name="generate")(_main)()


if __name__ == "__main__":
    main()
