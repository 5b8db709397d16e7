"""The ``llm`` description source: prompts -> cache -> backend on misses -> DescriptionSet (SPEC §3)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from descbench.core.choices import Choice
from descbench.core.description_set import DescriptionError, DescriptionSet
from descbench.core.description_text import DEFAULT_TEMPLATE, DetailedPrefix, Rule, sentence_form
from descbench.core.errors import BackendError
from descbench.core.files import write_atomic, write_error_reason
from descbench.descriptions.llm.backends import Backend
from descbench.descriptions.llm.cache import DescriptionCache, cache_key
from descbench.descriptions.llm.limits import MAX_ANSWER_CHARS, MAX_BULLETS, bound_answer
from descbench.descriptions.llm.prompts import (
    DEFAULT_BANK,
    build_prompt,
    expected_counts,
    load_bank,
    prompt_continues_bullet,
    resolve_num_examples,
)
from descbench.descriptions.sources import build_set

log = logging.getLogger(__name__)


class OnEmpty(Choice):
    """An answer with no bullet (after the backend's retries): an error listing the classes, or the class name."""

    error = "error"
    classname = "classname"


#: ``describe.exclude_wrong_count``: what an answer whose bullet count is not the examples' does to the run.
#: ``off``: counted only; ``class``: that class's images are left out of the metrics; ``point``: the study's
#: rule -- when most classes answered another count, the whole |D| point is marked excluded (its numbers
#: are still computed on every image, and the report leaves the point out of its curve, with the share).
ExcludeWrongCount = Choice("ExcludeWrongCount", {"off": "off", "class": "class", "point": "point"})
#: ``point``: "most classes" = more than this share of them
POINT_EXCLUSION_SHARE = 0.5


def exclusion_choice(value: object) -> Choice:
    """``describe.exclude_wrong_count`` as its choice (a one-line error otherwise; the former booleans are named)."""
    if isinstance(value, bool):
        raise DescriptionError(
            f"describe.exclude_wrong_count={value!r} is not one of off, class, point (true was class, false off)"
        )
    return ExcludeWrongCount.parse(value, "describe.exclude_wrong_count")


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
    num_examples: int | None = None,
    bank: str = DEFAULT_BANK,
    offline: bool = False,
    concurrency: int = 4,
    progress: bool = True,
    rule: Rule = Rule.corrected,
    template: str = DEFAULT_TEMPLATE,
    detailed_prefix: DetailedPrefix = DetailedPrefix.none,
    on_empty: OnEmpty = OnEmpty.error,
    exclude_wrong_count: ExcludeWrongCount = ExcludeWrongCount["off"],
) -> DescriptionSet:
    """Descriptions of ``classes`` written by ``backend`` under the prompt options, through the cache.

    Only cache misses reach the backend, at most ``concurrency`` at a time; each answer is
    cached as soon as it arrives, so an interrupted or failed run keeps what it generated.
    ``offline=True`` never calls the backend (e.g. DDP ranks other than 0) and fails
    listing the classes that are not cached.

    An answer without any ``- `` bullet is a failed generation: it is asked again as many
    times as the backend retries (``backend.max_retries``, 0 when it has none) and is never
    cached. Classes still without a bullet are an error listing them (``on_empty="error"``)
    or fall back to their class name (``on_empty="classname"``, listed in the stats).

    Texts: word bullets in the published "which is/has" form; detailed sentences as ``detailed_prefix``
    says (:class:`~descbench.core.description_text.DetailedPrefix`: ``rule``, Menon's form on sentences too;
    ``none``, as written; ``name``, ``"{class}, {sentence}"``). The number of bullets each class got is
    recorded (``meta["returned_counts"]``), and whether it is the examples' count (one of
    :func:`~descbench.descriptions.llm.prompts.expected_counts`); ``exclude_wrong_count`` says what a wrong
    count does (:data:`ExcludeWrongCount`: ``class`` lists those classes in the set's ``excluded``, whose
    images the task leaves out; ``point`` marks the whole point excluded when most classes have one).
    """
    classes = list(classes)
    if not classes:
        raise DescriptionError("llm descriptions: no classes given")
    if not isinstance(concurrency, int) or concurrency < 1:
        raise DescriptionError(f"llm descriptions: concurrency must be an integer >= 1, got {concurrency!r}")
    on_empty = OnEmpty.parse(on_empty, "describe.on_empty")
    num_examples = resolve_num_examples(bank, num_examples)
    form = sentence_form(detailed_prefix) if detailed else "which"
    exclusion = exclusion_choice(exclude_wrong_count)
    cache = DescriptionCache(cache_dir)
    identity = backend.identity()
    prompts = [
        build_prompt(
            c, num_desc=num_desc, detailed=detailed, instruction=instruction, num_examples=num_examples, bank=bank
        )
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
    empty: dict[str, str] = {}  # key -> the last raw answer without a bullet (not cached)
    if todo:
        _generate_missing(backend, cache, identity, todo, classes, prompts, records, empty, concurrency, progress)
    log.info(
        "llm descriptions: %d classes, %d prompts cached, %d generated (%s)",
        len(classes),
        num_cached,
        len(todo),
        identity.get("model"),
    )
    retries = _empty_retries(backend)
    fallback = [c for c, k in zip(classes, keys) if k in empty]
    if fallback and on_empty == "error":
        raise DescriptionError(
            f"llm descriptions: the model's answer has no '- ' bullet for {len(fallback)} class(es) after "
            f"{retries} retries: {fallback[:20]}; nothing was cached for them (rerun to ask again, or "
            "describe.on_empty=classname to fall back to the class name)"
        )
    if fallback:
        log.warning(
            "llm descriptions: %d class(es) got no bullet after %d retries and fall back to the class name "
            "(on_empty=classname; not cached, so a rerun asks again): %s",
            len(fallback),
            retries,
            fallback[:20],
        )
    cut = [c for c, k in zip(classes, keys) if k in records and records[k].get("cut")]
    if cut:
        log.warning(
            "llm descriptions: the answers of %d class(es) exceeded %d characters or %d bullets and were cut "
            "(recorded in describe.stats.answers_cut_classes): %s",
            len(cut),
            MAX_ANSWER_CHARS,
            MAX_BULLETS,
            cut[:20],
        )
    descriptors = [list(records[k]["descriptors"]) if k in records else [] for k in keys]
    returned = [len(d) for d in descriptors]
    wanted = expected_counts(bank, num_desc=num_desc, detailed=detailed, num_examples=num_examples)
    wrong = [i for i, n in enumerate(returned) if n not in wanted]
    share = len(wrong) / len(classes)
    point_excluded = exclusion == "point" and share > POINT_EXCLUSION_SHARE
    if point_excluded:
        log.warning(
            "llm descriptions: %d of %d classes (%.0f %%) answered another count than the examples' %s at "
            "num_desc=%d: the point is marked excluded (describe.exclude_wrong_count=point, the study's rule)",
            len(wrong),
            len(classes),
            100 * share,
            wanted,
            num_desc,
        )
    out = build_set(
        "llm",
        classes,
        descriptors,
        form=form,
        rule=rule,
        template=template,
        empty="classname",
        warn_empty=False,  # warned above, with the retries
        num_desc=num_desc,
        options={
            "num_desc": num_desc,
            "detailed": bool(detailed),
            "detailed_prefix": str(DetailedPrefix.parse(detailed_prefix, "describe.detailed_prefix"))
            if detailed
            else "not applicable to word bullets",
            "instruction": instruction if instruction is not None else "none",
            "num_examples": num_examples,
            "bank": load_bank(bank)["name"],
            "final_question": load_bank(bank)["final_question"],
            "on_empty": on_empty,
            "exclude_wrong_count": str(exclusion),
            **identity,
        },
        meta={
            "prompts": {c: p for c, p in zip(classes, prompts)},
            "raw": {c: records[k]["raw"] if k in records else empty[k] for c, k in zip(classes, keys)},
            "cache_keys": {c: k for c, k in zip(classes, keys)},
            "returned_counts": returned,
            "num_cached": num_cached,
            "num_generated": len(todo) - len(empty),
        },
        stats={
            "expected_counts": wanted,
            "num_wrong_count": len(wrong),
            "wrong_count_share": share,
            "wrong_count_classes": [classes[i] for i in wrong],
            "num_excluded": len(wrong) if exclusion == "class" else 0,
            "point_excluded": point_excluded,
            "num_answers_cut": len(cut),
            "answers_cut_classes": cut,
        },
    )
    if exclusion == "class":
        out.excluded = wrong
    return out


def _empty_retries(backend: Backend) -> int:
    """How many times an answer without a bullet is asked again: the backend's own retry count."""
    retries = getattr(backend, "max_retries", 0)
    return retries if isinstance(retries, int) and retries > 0 else 0


def _generate_missing(
    backend: Backend,
    cache: DescriptionCache,
    identity: dict[str, Any],
    todo: dict[str, int],
    classes: list[str],
    prompts: list[str],
    records: dict[str, dict[str, Any]],
    empty: dict[str, str],
    concurrency: int,
    progress: bool,
) -> None:
    """Ask the backend for every key in ``todo``; each answer with a bullet is cached by the worker that got it.

    Answers without any bullet are asked again (:func:`_empty_retries`); the keys still
    without one go to ``empty`` with their last raw answer, uncached.
    """
    retries = _empty_retries(backend)

    def work(key: str, i: int) -> tuple[str, Any]:
        for _ in range(retries + 1):
            continues = backend.continues_prompt and prompt_continues_bullet(prompts[i])
            raw, descriptors, cut = bound_answer(backend.generate(prompts[i]), continues_bullet=continues)
            if descriptors:
                record = cache.put(
                    key,
                    classname=classes[i],
                    prompt=prompts[i],
                    raw=raw,
                    descriptors=descriptors,
                    identity=identity,
                    cut=cut,
                )
                return "ok", record
        return "empty", raw

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
                    _keep(futures[fut], fut.result(), records, empty)
                    bar.update(1)
    finally:
        # On failure or interrupt: no new requests; requests in flight finish and are cached.
        pool.shutdown(wait=True, cancel_futures=True)
        for fut, key in futures.items():
            if (
                fut.done()
                and not fut.cancelled()
                and fut.exception() is None
                and key not in records
                and key not in empty
            ):
                _keep(key, fut.result(), records, empty)
                bar.update(1)
        bar.close()
    if error is not None:
        missing = [classes[i] for k, i in todo.items() if k not in records and k not in empty]
        kept = f"cached under {cache.root}" if cache.writable else "not cached (the cache dir cannot be written)"
        raise BackendError(
            f"llm descriptions: {error} - generation stopped with {len(missing)} of {len(classes)} classes missing "
            f"(first: {missing[:5]}); the {len(todo) - len(missing)} generated in this run are {kept}, a rerun "
            "resumes from there"
        ) from error


def _keep(key: str, result: tuple[str, Any], records: dict[str, Any], empty: dict[str, str]) -> None:
    status, value = result
    if status == "ok":
        records[key] = value
    else:
        empty[key] = value


def export_descriptors(descriptions: DescriptionSet, path: str | os.PathLike[str]) -> Path:
    """Write ``{class: [descriptor, ...]}`` (the published descriptor-file format, label order) to ``path``.

    The format is keyed by name: of classes sharing a name, the first one's descriptors are written (warned).
    """
    out: dict[str, list[str]] = {}
    for c, d in zip(descriptions.classes, descriptions.descriptors):
        out.setdefault(c, list(d))
    if len(out) < len(descriptions.classes):
        log.warning(
            "export %s: %d class(es) share a name with another; the file keeps one entry per name",
            path,
            len(descriptions.classes) - len(out),
        )
    path = Path(path)
    try:
        write_atomic(path, json.dumps(out, indent=2, ensure_ascii=False))
    except OSError as err:
        raise DescriptionError(
            f"cannot write the descriptor file {path} ({write_error_reason(err)}): choose a writable describe.export"
        ) from None
    return path
