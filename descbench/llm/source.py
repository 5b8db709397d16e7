"""The ``llm`` description source as built from ``conf/describe/llm.yaml`` (SPEC §2, §3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from descbench.descriptions.format import DEFAULT_TEMPLATE, Rule
from descbench.descriptions.types import DescriptionError, DescriptionSet
from descbench.llm.backends import Backend
from descbench.llm.generate import export_descriptors, generate_descriptions
from descbench.llm.prompts import PromptError


def llm(
    classes: Sequence[str],
    *,
    backend: Backend,
    cache_dir: str,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    instruction: str | None = "none",
    num_examples: int = 3,
    offline: bool = False,
    concurrency: int = 4,
    progress: bool = True,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    export: str | None = None,
    native: Mapping | None = None,
) -> DescriptionSet:
    """Descriptions written by a language model under the prompt options, read from the cache when present.

    ``seed`` (the sweep's) does not enter the prompt; the backend's own ``seed`` sets sampling.
    ``export`` also writes the ``{class: [descriptor, ...]}`` file there.
    """
    try:
        descriptions = generate_descriptions(
            classes,
            backend=backend,
            cache_dir=cache_dir,
            num_desc=num_desc,
            detailed=detailed,
            instruction=instruction,
            num_examples=num_examples,
            offline=offline,
            concurrency=concurrency,
            progress=progress,
            rule=rule,
            template=template,
        )
    except PromptError as err:
        raise DescriptionError(f"describe=llm: {err}") from None
    descriptions.options["offline"] = bool(offline)
    if export:
        export_descriptors(descriptions, export)
    return descriptions
