"""The ``llm`` description source as built from ``conf/describe/llm.yaml`` (SPEC §2, §3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from descbench.core.description_set import DescriptionError, DescriptionSet
from descbench.core.description_text import DEFAULT_TEMPLATE, DetailedPrefix, Rule, check_template, sentence_form
from descbench.descriptions.llm.backends import Backend
from descbench.descriptions.llm.generate import (
    ExcludeWrongCount,
    OnEmpty,
    export_descriptors,
    generate_descriptions,
)
from descbench.descriptions.llm.prompts import DEFAULT_BANK, PromptError, build_prompt
from descbench.descriptions.registry import description_source


@description_source("llm", class_list=True)
def llm(
    classes: Sequence[str],
    *,
    backend: Backend,
    cache_dir: str,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    instruction: str | None = "none",
    num_examples: int | None = None,
    bank: str = DEFAULT_BANK,
    detailed_prefix: DetailedPrefix = DetailedPrefix.none,
    on_empty: OnEmpty = OnEmpty.error,
    exclude_wrong_count: ExcludeWrongCount = ExcludeWrongCount["off"],
    offline: bool = False,
    concurrency: int = 4,
    progress: bool = True,
    rule: Rule = Rule.corrected,
    template: str = DEFAULT_TEMPLATE,
    export: str | None = None,
    dry_run: bool = False,
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """Descriptions written by a language model under the prompt options, read from the cache when present.

    ``num_desc`` is the number of bullets each in-context example shows (what the study
    varies), not a cap on the answer. ``seed`` (the sweep's) does not enter the prompt; the
    backend's own ``seed`` sets sampling. ``export`` also writes the ``{class: [descriptor,
    ...]}`` file there. ``dry_run`` belongs to ``python -m descbench.describe``.
    ``detailed_prefix``: how sentences are encoded (``rule``: Menon's "{c}, which ..." as for words; ``none``:
    as written; ``name``: "{c}, {sentence}"); ``exclude_wrong_count``: ``off``, ``class`` (classes whose answer
    count is not the examples' are left out) or ``point`` (the study's rule: the whole point is marked excluded
    when most classes are).
    """
    if not detailed or sentence_form(detailed_prefix) != "as_written":  # checked before any model is asked
        check_template(template, fields=("classname", "descriptor"), required="descriptor")
    if dry_run:
        raise DescriptionError(
            "describe.dry_run=true prints the prompt with python -m descbench.describe (no model is loaded); "
            "the evaluation has no dry run"
        )
    try:
        descriptions = generate_descriptions(
            classes,
            backend=backend,
            cache_dir=cache_dir,
            num_desc=num_desc,
            detailed=detailed,
            instruction=instruction,
            num_examples=num_examples,
            bank=bank,
            offline=offline,
            concurrency=concurrency,
            progress=progress,
            rule=rule,
            template=template,
            detailed_prefix=detailed_prefix,
            on_empty=on_empty,
            exclude_wrong_count=exclude_wrong_count,
        )
    except PromptError as err:
        raise DescriptionError(f"describe=llm: {err}") from None
    descriptions.options["offline"] = bool(offline)
    if export:
        export_descriptors(descriptions, export)
    return descriptions


def dry_run_prompt(options: Mapping[str, Any], classname: str) -> str:
    """The exact prompt the ``llm`` source would send for ``classname`` under ``options`` (its config).

    Pure: builds no backend and loads no model.
    """
    try:
        return build_prompt(
            classname,
            num_desc=options["num_desc"],
            detailed=bool(options.get("detailed", False)),
            instruction=options.get("instruction", "none"),
            num_examples=options.get("num_examples"),
            bank=options.get("bank", DEFAULT_BANK),
        )
    except PromptError as err:
        raise DescriptionError(f"describe=llm: {err}") from None


def read_class_list(path: str | Path) -> list[str]:
    """Class names from a plain text file, one per line (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DescriptionError(f"class list not found: {path} (describe.classes; one class name per line)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise DescriptionError(f"class list {path} is not UTF-8 text (byte offset {err.start})") from None
    names = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not names:
        raise DescriptionError(f"class list {path} holds no class name (one per line)")
    return names
