"""The ``llm`` description source: prompts -> cache -> backend on misses -> DescriptionSet (SPEC §3)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from descbench.descriptions.format import DEFAULT_TEMPLATE, Rule, format_description
from descbench.descriptions.types import DescriptionError, DescriptionSet
from descbench.llm.backends import Backend, BackendError
from descbench.llm.cache import DescriptionCache, cache_key, write_json_atomic
from descbench.llm.parse import parse_descriptors
from descbench.llm.prompts import build_prompt

log = logging.getLogger(__name__)


def _missing_message(missing: list[str], cache_dir: Path) -> str:
    shown = ", ".join(repr(c) for c in missing[:20]) + (
        f", ... ({len(missing) - 20} more)" if len(missing) > 20 else ""
    )
    return (
        f"offline: {len(missing)} class(es) have no cached descriptions under {cache_dir} for these prompt "
        f"options and backend: {shown}. Generate them first (python -m descbench.describe ...) or set offline=false."
    )


def generate_descriptions(
    classes: Sequence[str],
    *,
    backend: Backend,
    cache_dir: str | os.PathLike[str],
    num_desc: int,
    detailed: bool,
    instruction: str | None = "none",
    num_examples: int,
    offline: bool = False,
    concurrency: int = 4,
    progress: bool = True,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
) -> DescriptionSet:
    """Descriptions of ``classes`` written by ``backend`` under the prompt options, through the cache.

    Only cache misses reach the backend, at most ``concurrency`` at a time; each answer is
    cached as soon as it arrives, so an interrupted or failed run keeps what it generated.
    ``offline=True`` never calls the backend (e.g. DDP ranks other than 0) and fails
    listing the classes that are not cached. A class whose answer has no bullet falls
    back to its class name and is listed in ``meta["fallback_classes"]``.
    """
    classes = list(classes)
    if not classes:
        raise DescriptionError("llm descriptions: no classes given")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise DescriptionError(f"llm descriptions: concurrency must be an integer >= 1, got {concurrency!r}")
    cache = DescriptionCache(cache_dir)
    identity = backend.identity()
    prompts = [
        build_prompt(c, num_desc=num_desc, detailed=detailed, instruction=instruction, num_examples=num_examples)
        for c in classes
    ]
    keys = [cache_key(identity, p) for p in prompts]

    records: dict[str, dict[str, Any]] = {}
    todo: dict[str, int] = {}  # key -> index of the first class that needs it (duplicates share a key)
    for i, key in enumerate(keys):
        if key in records or key in todo:
            continue
        record = cache.get(key)
        if record is not None:
            records[key] = record
        else:
            todo[key] = i
    num_cached = len(records)

    if todo and offline:
        raise DescriptionError(_missing_message([classes[i] for i in todo.values()], cache.root))
    if todo:
        _generate_missing(backend, cache, identity, todo, classes, prompts, records, concurrency, progress)
    log.info(
        "llm descriptions: %d classes, %d prompts cached, %d generated (%s)",
        len(classes),
        num_cached,
        len(todo),
        identity.get("model"),
    )

    descriptors, texts, fallback = [], [], []
    for c, key in zip(classes, keys):
        d = list(records[key]["descriptors"])
        descriptors.append(d)
        if d and detailed:  # detailed answers are full sentences, encoded as written (CuPL-style)
            texts.append(list(d))
        elif d:
            texts.append([format_description(c, x, rule=rule, template=template) for x in d])
        else:
            fallback.append(c)
            texts.append([c])
    if fallback:
        log.warning(
            "llm descriptions: %d class(es) got no bullet and fall back to the class name: %s",
            len(fallback),
            fallback[:10],
        )

    options = {
        "num_desc": num_desc,
        "detailed": bool(detailed),
        "instruction": instruction if instruction is not None else "none",
        "num_examples": num_examples,
        "rule": "not applicable to detailed sentences" if detailed else rule,
        "template": "not applicable to detailed sentences" if detailed else template,
        **{k: v for k, v in identity.items()},
    }
    meta = {
        "prompts": {c: p for c, p in zip(classes, prompts)},
        "raw": {c: records[k]["raw"] for c, k in zip(classes, keys)},
        "cache_keys": {c: k for c, k in zip(classes, keys)},
        "fallback_classes": fallback,
        "num_fallback": len(fallback),
        "num_cached": num_cached,
        "num_generated": len(todo),
    }
    return DescriptionSet(
        source="llm", classes=classes, descriptors=descriptors, texts=texts, options=options, meta=meta
    )


def _generate_missing(
    backend: Backend,
    cache: DescriptionCache,
    identity: dict[str, Any],
    todo: dict[str, int],
    classes: list[str],
    prompts: list[str],
    records: dict[str, dict[str, Any]],
    concurrency: int,
    progress: bool,
) -> None:
    """Ask the backend for every key in ``todo``; each answer is cached by the worker that got it."""

    def work(key: str, i: int) -> dict[str, Any]:
        raw = backend.generate(prompts[i])
        descriptors = parse_descriptors(raw, continues_bullet=backend.continues_prompt)
        return cache.put(
            key, classname=classes[i], prompt=prompts[i], raw=raw, descriptors=descriptors, identity=identity
        )

    workers = max(1, min(concurrency, getattr(backend, "max_concurrency", concurrency), len(todo)))
    bar = tqdm(total=len(todo), desc="generating descriptions", unit="class", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm")
    futures = {pool.submit(work, key, i): key for key, i in todo.items()}
    error: BaseException | None = None
    try:
        pending = set(futures)
        while pending and error is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.exception() is not None and error is None:
                    error = fut.exception()
                elif fut.exception() is None:
                    records[futures[fut]] = fut.result()
                    bar.update(1)
    finally:
        # On failure or interrupt: no new requests; requests in flight finish and are cached.
        pool.shutdown(wait=True, cancel_futures=True)
        for fut, key in futures.items():
            if fut.done() and not fut.cancelled() and fut.exception() is None and key not in records:
                records[key] = fut.result()
                bar.update(1)
        bar.close()
    if error is not None:
        missing = [classes[i] for k, i in todo.items() if k not in records]
        raise BackendError(
            f"llm descriptions: generation stopped, {len(missing)} of {len(classes)} classes missing "
            f"(first: {missing[:5]}); the {len(todo) - len(missing)} generated in this run are cached "
            f"under {cache.root} and a rerun resumes from there. Cause: {error}"
        ) from error


def export_descriptors(descriptions: DescriptionSet, path: str | os.PathLike[str]) -> Path:
    """Write ``{class: [descriptor, ...]}`` (the published descriptor-file format, label order) to ``path``."""
    out: dict[str, list[str]] = {}
    for c, d in zip(descriptions.classes, descriptions.descriptors):
        out.setdefault(c, list(d))
    path = Path(path)
    write_json_atomic(path, out)
    return path
