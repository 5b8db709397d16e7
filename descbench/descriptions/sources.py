"""Description sources (SPEC §2): each returns a :class:`DescriptionSet` for a list of classes.

Every source takes the same sweep options (``num_desc``, ``detailed``, ``seed``) and the
dataset's ``native`` descriptors and ``class_ids``, so that a sweep composes whatever the
source; an option a source does not use is recorded as "not applicable to source X", never
silently dropped. The controls (``waffle``, ``swapped``, ``shuffled``) receive the source
they are built from as a callable (``base``: a ``functools.partial`` of another source, which
Hydra builds from the config's ``base:`` node with ``_partial_: true``).
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import random
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

from descbench.core.description_set import DescriptionError, DescriptionSet, count_stats, derangement
from descbench.core.description_text import (
    DEFAULT_TEMPLATE,
    EMPTY_MODES,
    RULES,
    EmptyMode,
    Rule,
    TextForm,
    check_template,
    empty_text,
    render_text,
)
from descbench.descriptions.descriptor_files import match_keys, read_descriptor_file, summarise_matches

log = logging.getLogger(__name__)

#: What a control receives as ``base``: a source with everything but the sweep options bound.
BaseSource = Callable[..., DescriptionSet]
WaffleKind = Literal["words", "chars", "both"]


def not_applicable(source: str) -> str:
    return f"not applicable to source {source}"


def check_num_desc(num_desc: Any) -> int:
    """``num_desc`` must be an integer >= 1 (booleans and floats are refused). The one check of it."""
    if isinstance(num_desc, bool) or not isinstance(num_desc, int) or num_desc < 1:
        raise DescriptionError(f"num_desc must be an integer >= 1, got {num_desc!r} (set num_desc=1..7)")
    return num_desc


def check_choice(key: str, value: Any, choices: Sequence[Any]) -> Any:
    """``value`` must be one of ``choices`` (one line naming the config key)."""
    if value not in choices:
        raise DescriptionError(f"{key} must be one of {list(choices)}, got {value!r}")
    return value


def take_first(
    source: str, classes: Sequence[str], descriptors: Sequence[Sequence[str]], num_desc: int, allow_fewer: bool
) -> list[list[str]]:
    """The first ``num_desc`` descriptors of each class.

    Asking for more than a class has is an error naming the classes, unless ``allow_fewer``
    (then each class keeps what it has and the counts are recorded in the set's stats).
    """
    short = [(c, len(d)) for c, d in zip(classes, descriptors) if len(d) < num_desc]
    if short and not allow_fewer:
        fewest = min(n for _, n in short)
        shown = ", ".join(f"{c!r} ({n})" for c, n in short[:8]) + (
            f", ... ({len(short) - 8} more)" if len(short) > 8 else ""
        )
        raise DescriptionError(
            f"num_desc={num_desc} but describe={source} has fewer descriptors for {len(short)} class(es): {shown}; "
            f"set num_desc<={fewest}, or describe.allow_fewer=true to use what each class has (counts are recorded)"
        )
    return [list(d[:num_desc]) for d in descriptors]


def build_set(
    source: str,
    classes: Sequence[str],
    descriptors: Sequence[Sequence[str]],
    *,
    form: TextForm,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    empty: EmptyMode = "classname",
    warn_empty: bool = True,
    num_desc: int | None,
    names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    stats: Mapping[str, Any] | None = None,
) -> DescriptionSet:
    """Render every class's texts, fall back for empty lists as ``empty`` says, record counts.

    ``names`` are the class names written into the texts (default: ``classes``). Classes
    without a descriptor are warned about by name; ``empty="error"`` refuses them.
    """
    check_choice("describe.empty", empty, EMPTY_MODES)
    check_choice("describe.rule", rule, RULES)
    if form != "as_written":
        check_template(template, fields=("classname", "descriptor"), required="descriptor")
    names = list(classes) if names is None else list(names)
    empties = [i for i, d in enumerate(descriptors) if not d]
    if empties:
        listed = [classes[i] for i in empties]
        if empty == "error":
            raise DescriptionError(
                f"describe={source}: {len(empties)} class(es) have no descriptor: {listed[:20]} "
                "(describe.empty=error; classname or menon fall back to one text)"
            )
        if warn_empty:
            log.warning(
                "describe=%s: %d class(es) have no descriptor and fall back (empty=%s): %s",
                source,
                len(empties),
                empty,
                listed[:20],
            )
    texts = [
        [render_text(n, d, form=form, rule=rule, template=template) for d in ds]
        if ds
        else [empty_text(n, empty, template)]
        for n, ds in zip(names, descriptors)
    ]
    recorded = {
        "text_form": form,
        "rule": rule if form == "which" else not_applicable(f"{source} with {form} texts"),
        "template": template if form != "as_written" else not_applicable(f"{source} with as_written texts"),
        "empty": empty,
        **(options or {}),
    }
    return DescriptionSet(
        source=source,
        classes=list(classes),
        descriptors=[list(d) for d in descriptors],
        texts=texts,
        options=recorded,
        meta=dict(meta or {}),
        stats={**count_stats(classes, descriptors, num_desc, empties), **(stats or {})},
    )


def classname(
    classes: Sequence[str],
    *,
    num_desc: int = 1,
    detailed: bool = False,
    seed: int = 0,
    template: str = "{classname}",
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """One text per class: the class name in ``template``."""
    check_num_desc(num_desc)
    check_template(template, fields=("classname",), required="classname")
    return DescriptionSet(
        source="classname",
        classes=list(classes),
        descriptors=[[] for _ in classes],
        texts=[[template.format(classname=c)] for c in classes],
        options={
            "template": template,
            "num_desc": not_applicable("classname"),
            "detailed": not_applicable("classname"),
            "rule": not_applicable("classname"),
        },
        stats=count_stats(classes, [[] for _ in classes], None),
    )


def templates(
    classes: Sequence[str],
    *,
    num_desc: int = 1,
    detailed: bool = False,
    seed: int = 0,
    ensemble: str = "openai",
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """CLIP's prompt-template ensemble ("a photo of a {c}." ...): ``openai`` (80) or ``simple``."""
    import open_clip

    check_num_desc(num_desc)
    table = {"openai": open_clip.OPENAI_IMAGENET_TEMPLATES, "simple": open_clip.SIMPLE_IMAGENET_TEMPLATES}
    check_choice("describe.ensemble", ensemble, sorted(table))
    fns = table[ensemble]
    return DescriptionSet(
        source="templates",
        classes=list(classes),
        descriptors=[[] for _ in classes],
        texts=[[fn(c) for fn in fns] for c in classes],
        options={
            "ensemble": ensemble,
            "num_templates": len(fns),
            "num_desc": not_applicable("templates"),
            "detailed": not_applicable("templates"),
            "rule": not_applicable("templates"),
        },
        stats=count_stats(classes, [[] for _ in classes], None),
    )


def file(
    classes: Sequence[str],
    *,
    path: str | None,
    key: str | None = None,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    sentences: bool = False,
    truncate: bool = False,
    allow_fewer: bool = False,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    empty: EmptyMode = "classname",
    names: Literal["dataset", "key"] = "dataset",
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """Descriptors from a JSON file: GPT-3 descriptor files, or CuPL sentences with ``sentences=True``.

    Keys are matched to ``classes`` by name (:func:`~descbench.descriptions.descriptor_files.match_keys`);
    matches other than exact are logged and listed in ``meta["key_matches"]``. Every descriptor
    of a class is used, as published; with ``truncate`` only the first ``num_desc`` (a class
    with fewer is an error unless ``allow_fewer``). ``names="key"``
    writes the matched file key (``_`` as spaces) into the texts instead of the dataset's
    class name, as Menon & Vondrick's code does (it takes the class names from the file).
    """
    check_num_desc(num_desc)
    check_choice("describe.names", names, ("dataset", "key"))
    if path is None or str(path).strip() in ("", "???"):
        raise DescriptionError(
            "describe=file needs a descriptor file: add describe.path=/path/to/descriptors.json "
            '({"class name": ["descriptor", ...]}, e.g. a published GPT-3 descriptor file)'
        )
    data = read_descriptor_file(path, key)
    where = f"description file {path}" + (f" [{key!r}]" if key is not None else "")
    matches = match_keys(classes, list(data), class_ids=class_ids, where=where)
    loose = [m for m in matches if m.how != "exact"]
    summary = summarise_matches(matches)
    if loose:
        log.info(
            "%s: %s; not exact: %s",
            where,
            summary,
            "; ".join(f"{m.name!r} <- {m.key!r} ({m.how})" for m in loose[:20]),
        )
    descriptors = [[d.strip() for d in data[m.key] if d.strip()] for m in matches]
    if truncate:
        descriptors = take_first("file", classes, descriptors, num_desc, allow_fewer)
    shared = sorted({m.key for m in matches if sum(o.key == m.key for o in matches) > 1})
    return build_set(
        "file",
        classes,
        descriptors,
        form="as_written" if sentences else "which",
        rule=rule,
        template=template,
        empty=empty,
        num_desc=num_desc if truncate else None,
        names=[m.key.replace("_", " ") for m in matches] if names == "key" else None,
        options={
            "path": str(path),
            "key": key,
            "num_desc": num_desc if truncate else not_applicable("file without truncate"),
            "detailed": not_applicable("file"),
            "sentences": sentences,
            "truncate": truncate,
            "allow_fewer": allow_fewer if truncate else not_applicable("file without truncate"),
            "names": names,
            "key_matching": summary,
        },
        meta={
            "key_matches": [{"index": m.index, "class": m.name, "key": m.key, "how": m.how} for m in loose],
            "unused_keys": len(set(data) - {m.key for m in matches}),
        },
        stats={
            "key_matches_normalised": sum(m.how == "normalised" for m in matches),
            "key_matches_alias": sum(m.how == "alias" for m in matches),
            "key_matches_loose": [f"{m.name} <- {m.key} ({m.how})" for m in loose],
            "keys_shared_by_same_name_classes": shared,
        },
    )


def world(
    classes: Sequence[str],
    *,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    allow_fewer: bool = False,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """The descriptors that ship with the dataset (the shapes world's true attributes, the photos' notes).

    ``native`` maps ``"words"``/``"sentences"`` to ``{class: [descriptor, ...]}``; the first
    ``num_desc`` of each class are used; sentences (``detailed=true``) are encoded as written.
    """
    check_num_desc(num_desc)
    if not native:
        raise DescriptionError(
            "describe=world needs a dataset that ships its own descriptors (dataset=shapes or dataset=photos); "
            "for this dataset use describe=file, describe=llm, describe=classname or describe=templates"
        )
    table = native["sentences" if detailed else "words"]
    descriptors = take_first("world", classes, [list(table[c]) for c in classes], num_desc, allow_fewer)
    return build_set(
        "world",
        classes,
        descriptors,
        form="as_written" if detailed else "which",
        rule=rule,
        template=template,
        num_desc=num_desc,
        options={"num_desc": num_desc, "detailed": detailed, "allow_fewer": allow_fewer},
    )


# --------------------------------------------------------------------------- controls


def check_reps(reps: Any) -> int:
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise DescriptionError(f"describe.reps must be an integer >= 1, got {reps!r}")
    return reps


def rep_seed(seed: int, rep: int) -> int:
    """The seed of repetition ``rep``: ``seed`` itself for repetition 0, a hash of (seed, rep) after.

    Repetition 0 of ``reps=N`` is therefore the ``reps=1`` run of the same seed, and the
    repetitions of two seeds never coincide (as ``seed + rep`` would).
    """
    if rep == 0:
        return int(seed)
    digest = hashlib.sha256(f"descbench-rep:{int(seed)}:{rep}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF


def _with_repetitions(sets: list[DescriptionSet], seed: int) -> DescriptionSet:
    """One set for ``reps=1``; else repetition 0's content with every repetition attached."""
    seeds = [s.options["seed"] for s in sets]
    for s in sets:
        s.stats.update(reps=len(sets))
    if len(sets) == 1:
        return sets[0]
    first = sets[0]
    return DescriptionSet(
        source=first.source,
        classes=first.classes,
        descriptors=first.descriptors,
        texts=first.texts,
        options={**first.options, "seed": seed, "rep": not_applicable(f"{first.source} with reps > 1")},
        meta=first.meta,
        stats={**first.stats, "rep_seeds": seeds},
        repetitions=sets,
    )


def _call_base(
    base: BaseSource, classes: Sequence[str], num_desc: int, detailed: bool, seed: int, native, class_ids
) -> DescriptionSet:
    if not callable(base):
        raise DescriptionError(
            f"describe.base must be a source (a config node with _target_ and _partial_: true), got {base!r}"
        )
    return base(
        classes=list(classes), num_desc=num_desc, detailed=detailed, seed=seed, native=native, class_ids=class_ids
    )


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[str, ...]:
    """Whole alphabetic words of CLIP's BPE vocabulary (the pool of random words)."""
    raw = resources.files("open_clip").joinpath("bpe_simple_vocab_16e6.txt.gz").read_bytes()
    words = set()
    for line in gzip.decompress(raw).decode("utf-8").splitlines()[1:]:
        token = "".join(line.split(" ")[:2])  # a merge "ele phant</w>" makes the token "elephant</w>"
        word = token[:-4]
        if token.endswith("</w>") and word.isascii() and word.isalpha() and len(word) >= 3:
            words.add(word.lower())
    return tuple(sorted(words))


def waffle_shape(names: Sequence[str]) -> dict[str, int]:
    """WaffleCLIP's sizes, from the class names: words per random-word descriptor and their length,
    groups per random-character descriptor and characters per group.

    As WaffleCLIP's ``waffle`` mode: words = max(round(mean words per name), 1); word length =
    round(mean over names of the mean word length); groups = round(mean spaces per name) + 1;
    characters = ceil(mean over names of the longest word), raised to the next multiple of the
    groups (by a full group when already a multiple, as the reference does), split evenly.
    """
    words = [n.replace("_", " ").split(" ") for n in names]
    num_words = max(round(sum(len(w) for w in words) / len(words)), 1)
    word_length = round(sum(sum(len(x) for x in w) / len(w) for w in words) / len(words))
    groups = round(sum(n.count(" ") for n in names) / len(names)) + 1
    chars = math.ceil(sum(max(len(x) for x in n.split(" ")) for n in names) / len(names))
    chars += groups - chars % groups
    return {"words": num_words, "word_length": max(word_length, 1), "groups": groups, "group_chars": chars // groups}


def _noise(rng: random.Random, count: int, kind: WaffleKind, shape: dict[str, int], words, chars) -> list[str]:
    """``count`` random descriptors: words, character strings, or both alternating (word first)."""
    out = []
    for k in range(count):
        if kind == "words" or (kind == "both" and k % 2 == 0):
            out.append(" ".join(rng.choice(words) for _ in range(shape["words"])))
        else:
            groups = ["".join(rng.choice(chars) for _ in range(shape["group_chars"])) for _ in range(shape["groups"])]
            out.append(", ".join(groups))
    return out


def waffle(
    classes: Sequence[str],
    *,
    base: BaseSource,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    kind: WaffleKind = "both",
    shared: bool = True,
    count: int | None = None,
    reps: int = 1,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """WaffleCLIP's random descriptors (Roth et al. 2023): random words and random character strings.

    ``kind``: ``words`` | ``chars`` | ``both`` (alternating word, characters; WaffleCLIP's
    pairs). ``count`` descriptors per class, default as many as ``base`` encodes for the class
    (``shared``: the mean over classes, rounded). ``shared`` (default, as WaffleCLIP): one
    random list for all classes, only the class name differs; else each class its own.
    ``reps`` repetitions, each with its own seed (:func:`rep_seed`). Sizes follow WaffleCLIP
    (:func:`waffle_shape`); words are CLIP's BPE vocabulary words cut to the mean word length
    of the class names (WaffleCLIP draws from its own 4,329-word list, cut the same way);
    characters are those of the base's descriptors (a-z when it has none), as WaffleCLIP's.
    Texts follow the published convention ("{class}, which has {noise}").
    """
    check_choice("describe.kind", kind, ("words", "chars", "both"))
    check_reps(reps)
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise DescriptionError(f"describe.count must be null or an integer >= 1, got {count!r}")
    reference = _call_base(base, classes, num_desc, detailed, seed, native, class_ids)
    if count is not None:
        counts = [count] * len(classes)
    elif shared:
        counts = [max(round(sum(reference.counts) / len(classes)), 1)] * len(classes)
    else:
        counts = list(reference.counts)
    shape = waffle_shape(classes)
    words = [w[: shape["word_length"]] for w in _vocabulary()]
    pool = sorted(
        {ch for ds in reference.descriptors for d in ds for ch in d.replace(",", "").replace(".", "")} - {" "}
    )
    chars = pool or list("abcdefghijklmnopqrstuvwxyz")
    sets = []
    for r in range(reps):
        s = rep_seed(seed, r)
        rng = random.Random(s)
        if shared:
            common = _noise(rng, counts[0], kind, shape, words, chars)
            descriptors = [list(common) for _ in classes]
        else:
            descriptors = [_noise(rng, n, kind, shape, words, chars) for n in counts]
        sets.append(
            build_set(
                "waffle",
                classes,
                descriptors,
                form="which",
                rule=rule,
                template=template,
                num_desc=None,
                options={
                    "base": reference.source,
                    "num_desc": reference.options.get("num_desc"),
                    "detailed": not_applicable("waffle"),
                    "kind": kind,
                    "shared": shared,
                    "count": count if count is not None else f"as base ({'mean' if shared else 'per class'})",
                    "reps": reps,
                    "rep": r,
                    "seed": s,
                },
                stats={
                    **{f"waffle_{k}": v for k, v in shape.items()},
                    "waffle_chars": "base descriptors" if pool else "a-z",
                },
            )
        )
    return _with_repetitions(sets, seed)


def _rewrite(reference: DescriptionSet, source: str, descriptors: list[list[str]], rep: int, seed: int, reps: int):
    """Re-attach descriptors to class names the way the base source renders them."""
    opts = reference.options
    return build_set(
        source,
        reference.classes,
        descriptors,
        form=opts.get("text_form", "which"),
        rule=opts["rule"] if opts.get("text_form", "which") == "which" else "corrected",
        template=opts.get("template", DEFAULT_TEMPLATE) if opts.get("text_form") != "as_written" else DEFAULT_TEMPLATE,
        empty=opts.get("empty", "classname"),
        num_desc=None,
        options={**opts, "base": reference.source, "reps": reps, "rep": rep, "seed": seed},
    )


def _repeat_control(
    name: str,
    deal: Callable[[DescriptionSet, random.Random], tuple[list[list[str]], dict[str, Any]]],
    classes: Sequence[str],
    base: BaseSource,
    num_desc: int,
    detailed: bool,
    seed: int,
    reps: int,
    native: Mapping | None,
    class_ids: Sequence[str] | None,
) -> DescriptionSet:
    """A control built from the base source's descriptors, re-dealt by ``deal`` once per repetition
    (each with its own seed), re-attached to the class names the way the base formats them."""
    check_reps(reps)
    reference = _call_base(base, classes, num_desc, detailed, seed, native, class_ids)
    sets = []
    for r in range(reps):
        s = rep_seed(seed, r)
        descriptors, meta = deal(reference, random.Random(s))
        out = _rewrite(reference, name, descriptors, r, s, reps)
        out.meta.update(meta)
        sets.append(out)
    return _with_repetitions(sets, seed)


def _swap(reference: DescriptionSet, rng: random.Random) -> tuple[list[list[str]], dict[str, Any]]:
    perm = derangement(len(reference.classes), rng)
    # class i takes the descriptors of class perm[i]
    return [reference.descriptors[p] for p in perm], {"taken_from": perm}


def _shuffle(reference: DescriptionSet, rng: random.Random) -> tuple[list[list[str]], dict[str, Any]]:
    pool = [d for ds in reference.descriptors for d in ds]
    rng.shuffle(pool)
    dealt, start = [], 0
    for ds in reference.descriptors:
        dealt.append(pool[start : start + len(ds)])
        start += len(ds)
    return dealt, {}


def _control_source(name: str, deal, doc: str) -> Callable[..., DescriptionSet]:
    """A description source (the signature every source has) for the control ``name`` dealt by ``deal``."""

    def source(
        classes: Sequence[str],
        *,
        base: BaseSource,
        num_desc: int,
        detailed: bool = False,
        seed: int = 0,
        reps: int = 1,
        native: Mapping | None = None,
        class_ids: Sequence[str] | None = None,
    ) -> DescriptionSet:
        return _repeat_control(name, deal, classes, base, num_desc, detailed, seed, reps, native, class_ids)

    source.__name__ = source.__qualname__ = name
    source.__doc__ = doc
    return source


swapped = _control_source(
    "swapped", _swap, "Control: each class gets another class's descriptors (a seeded derangement per repetition)."
)
shuffled = _control_source(
    "shuffled", _shuffle, "Control: all descriptors pooled, shuffled and dealt back with each class's count."
)
