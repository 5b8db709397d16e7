"""Description sources (SPEC §2): each returns a :class:`DescriptionSet` for a list of classes.

Every source takes the same sweep options (``num_desc``, ``detailed``, ``seed``) and the
dataset's ``native`` descriptors and ``class_ids``, so that a sweep composes whatever the
source; an option a source does not use is recorded as "not applicable to source X", never
silently dropped. The controls built from another source's descriptors are in :mod:`.controls`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from descbench.core.choices import Choice
from descbench.core.description_set import DescriptionError, DescriptionSet, count_stats
from descbench.core.description_text import (
    DEFAULT_TEMPLATE,
    DetailedPrefix,
    EmptyMode,
    Rule,
    TextForm,
    check_template,
    empty_text,
    render_text,
    sentence_form,
)
from descbench.descriptions.descriptor_files import match_keys, read_descriptor_file, summarise_matches
from descbench.descriptions.registry import description_source

log = logging.getLogger(__name__)


def not_applicable(source: str) -> str:
    return f"not applicable to source {source}"


def check_num_desc(num_desc: Any) -> int:
    """``num_desc`` must be an integer >= 1 (booleans and floats are refused). The one check of it."""
    if isinstance(num_desc, bool) or not isinstance(num_desc, int) or num_desc < 1:
        raise DescriptionError(f"num_desc must be an integer >= 1, got {num_desc!r} (set num_desc=1..7)")
    return num_desc


class Ensemble(Choice):
    """CLIP's prompt-template ensembles: the 80 ImageNet templates of the CLIP paper, or its short list."""

    openai = "openai"
    simple = "simple"


class KeyNames(Choice):
    """The class name written in a descriptor file's texts: the data set's (curated) name, or the file's key
    (as Menon & Vondrick's code)."""

    dataset = "dataset"
    key = "key"


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
    rule: Rule = Rule.corrected,
    template: str = DEFAULT_TEMPLATE,
    empty: EmptyMode = EmptyMode.classname,
    warn_empty: bool = True,
    num_desc: int | None,
    names: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    stats: Mapping[str, Any] | None = None,
    held: Sequence[Sequence[str]] | None = None,
) -> DescriptionSet:
    """Render every class's texts, fall back for empty lists as ``empty`` says, record counts.

    ``names`` are the class names written into the texts (default: ``classes``). Classes
    without a descriptor are warned about by name; ``empty="error"`` refuses them. ``held``: every
    descriptor each class holds when ``descriptors`` are the first ``num_desc`` of them; the others are
    rendered the same way into the set's ``ahead`` texts (encoded ahead for the sweep's other jobs).
    """
    empty = EmptyMode.parse(empty, "describe.empty")
    rule = Rule.parse(rule, "describe.rule")
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
    ahead = [
        render_text(n, d, form=form, rule=rule, template=template)
        for n, ds, all_ds in zip(names, descriptors, held or ())
        for d in all_ds[len(ds) :]
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
        ahead=list(dict.fromkeys(ahead)),
    )


@description_source("classname")
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


@description_source("templates")
def templates(
    classes: Sequence[str],
    *,
    num_desc: int = 1,
    detailed: bool = False,
    seed: int = 0,
    ensemble: Ensemble = Ensemble.openai,
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """CLIP's prompt-template ensemble ("a photo of a {c}." ...): ``openai`` (80) or ``simple``."""
    import open_clip

    check_num_desc(num_desc)
    table = {"openai": open_clip.OPENAI_IMAGENET_TEMPLATES, "simple": open_clip.SIMPLE_IMAGENET_TEMPLATES}
    ensemble = Ensemble.parse(ensemble, "describe.ensemble")
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


@description_source("file")
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
    rule: Rule = Rule.corrected,
    template: str = DEFAULT_TEMPLATE,
    empty: EmptyMode = EmptyMode.classname,
    names: KeyNames = KeyNames.dataset,
    detailed_prefix: DetailedPrefix = DetailedPrefix.none,
    native: Mapping | None = None,
    class_ids: Sequence[str] | None = None,
) -> DescriptionSet:
    """Descriptors from a JSON file: GPT-3 descriptor files, or CuPL sentences with ``sentences=True``
    (encoded as ``detailed_prefix`` says: as written by default, ``rule`` for Menon's "{c}, which ..." form).

    Keys are matched to ``classes`` by name (:func:`~descbench.descriptions.descriptor_files.match_keys`);
    matches other than exact are logged and listed in ``meta["key_matches"]``. Every descriptor
    of a class is used, as published; with ``truncate`` only the first ``num_desc`` (a class
    with fewer is an error unless ``allow_fewer``). ``names="key"``
    writes the matched file key (``_`` as spaces) into the texts instead of the dataset's
    class name, as Menon & Vondrick's code does (it takes the class names from the file).
    """
    check_num_desc(num_desc)
    names = KeyNames.parse(names, "describe.names")
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
    held = [[d.strip() for d in data[m.key] if d.strip()] for m in matches]
    descriptors = take_first("file", classes, held, num_desc, allow_fewer) if truncate else held
    shared = sorted({m.key for m in matches if sum(o.key == m.key for o in matches) > 1})
    return build_set(
        "file",
        classes,
        descriptors,
        form=sentence_form(detailed_prefix) if sentences else "which",
        rule=rule,
        template=template,
        empty=empty,
        num_desc=num_desc if truncate else None,
        names=[m.key.replace("_", " ") for m in matches] if names == "key" else None,
        held=held if truncate else None,
        options={
            "path": str(path),
            "key": key,
            "num_desc": num_desc if truncate else not_applicable("file without truncate"),
            "detailed": not_applicable("file"),
            "sentences": sentences,
            "detailed_prefix": str(DetailedPrefix.parse(detailed_prefix, "describe.detailed_prefix"))
            if sentences
            else "not applicable to word bullets",
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


@description_source("world")
def world(
    classes: Sequence[str],
    *,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    allow_fewer: bool = False,
    rule: Rule = Rule.corrected,
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
    held = [list(table[c]) for c in classes]
    descriptors = take_first("world", classes, held, num_desc, allow_fewer)
    return build_set(
        "world",
        classes,
        descriptors,
        held=held,
        form="as_written" if detailed else "which",
        rule=rule,
        template=template,
        num_desc=num_desc,
        options={"num_desc": num_desc, "detailed": detailed, "allow_fewer": allow_fewer},
    )
