"""Description sources (SPEC §2): each returns a :class:`DescriptionSet` for a list of classes.

Every source takes the same sweep options (``num_desc``, ``detailed``, ``seed``) so that a
sweep composes whatever the source; an option a source does not use is recorded as
"not applicable to source X", never silently dropped.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from descbench.descriptions.format import DEFAULT_TEMPLATE, Rule, format_description
from descbench.descriptions.types import DescriptionError, DescriptionSet


def not_applicable(source: str) -> str:
    return f"not applicable to source {source}"


def check_num_desc(num_desc: Any) -> int:
    """``num_desc`` must be an integer >= 1 (booleans and floats are refused)."""
    if isinstance(num_desc, bool) or not isinstance(num_desc, int) or num_desc < 1:
        raise DescriptionError(f"num_desc must be an integer >= 1, got {num_desc!r} (set num_desc=1..7)")
    return num_desc


def _format_all(
    classes: Sequence[str], descriptors: Sequence[Sequence[str]], *, as_is: bool, rule: Rule, template: str
) -> list[list[str]]:
    texts = []
    for name, items in zip(classes, descriptors):
        if not items:
            texts.append([name])
        elif as_is:
            texts.append(list(items))
        else:
            texts.append([format_description(name, d, rule=rule, template=template) for d in items])
    return texts


def classname(
    classes: Sequence[str],
    *,
    num_desc: int = 1,
    detailed: bool = False,
    seed: int = 0,
    template: str = "{classname}",
    native: Mapping | None = None,
) -> DescriptionSet:
    """One text per class: the class name in ``template``."""
    check_num_desc(num_desc)
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
    )


def templates(
    classes: Sequence[str],
    *,
    num_desc: int = 1,
    detailed: bool = False,
    seed: int = 0,
    ensemble: str = "openai",
    native: Mapping | None = None,
) -> DescriptionSet:
    """CLIP's prompt-template ensemble ("a photo of a {c}." ...): ``openai`` (80) or ``simple``."""
    import open_clip

    check_num_desc(num_desc)
    table = {"openai": open_clip.OPENAI_IMAGENET_TEMPLATES, "simple": open_clip.SIMPLE_IMAGENET_TEMPLATES}
    if ensemble not in table:
        raise DescriptionError(
            f"unknown template ensemble {ensemble!r} (describe.ensemble): use one of {sorted(table)}"
        )
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
    )


def load_descriptor_file(path: str | Path, classes: Sequence[str]) -> list[list[str]]:
    """Read a ``{class name: [descriptor, ...]}`` JSON file, checked against ``classes``."""
    path = Path(path)
    if not path.is_file():
        raise DescriptionError(f"description file not found: {path} (describe.path)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DescriptionError(f"description file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in data.items()
    ):
        raise DescriptionError(
            f'description file {path} must map each class name to a list of strings: {{"cat": ["whiskers", ...]}}'
        )
    missing = [c for c in classes if c not in data]
    if missing:
        raise DescriptionError(
            f"description file {path} misses {len(missing)} class(es) of the dataset: {missing[:20]}"
        )
    return [[d.strip() for d in data[c] if d.strip()] for c in classes]


def file(
    classes: Sequence[str],
    *,
    path: str,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    sentences: bool = False,
    truncate: bool = True,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    native: Mapping | None = None,
) -> DescriptionSet:
    """Descriptors from a JSON file (GPT-3 descriptor files, or CuPL sentences with ``sentences=True``).

    Classes with an empty list fall back to their class name; with ``truncate`` the first
    ``num_desc`` descriptors of each class are used.
    """
    check_num_desc(num_desc)
    descriptors = load_descriptor_file(path, classes)
    if truncate:
        descriptors = [d[:num_desc] for d in descriptors]
    fallback = [c for c, d in zip(classes, descriptors) if not d]
    return DescriptionSet(
        source="file",
        classes=list(classes),
        descriptors=descriptors,
        texts=_format_all(classes, descriptors, as_is=sentences, rule=rule, template=template),
        options={
            "path": str(path),
            "num_desc": num_desc if truncate else not_applicable("file without truncate"),
            "detailed": not_applicable("file"),
            "sentences": sentences,
            "rule": not_applicable("file with sentences") if sentences else rule,
            "template": template,
        },
        meta={"fallback_to_classname": fallback},
    )


def world(
    classes: Sequence[str],
    *,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    rule: Rule = "corrected",
    template: str = DEFAULT_TEMPLATE,
    native: Mapping | None = None,
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
    descriptors = [list(table[c])[:num_desc] for c in classes]
    return DescriptionSet(
        source="world",
        classes=list(classes),
        descriptors=descriptors,
        texts=_format_all(classes, descriptors, as_is=detailed, rule=rule, template=template),
        options={
            "num_desc": num_desc,
            "detailed": detailed,
            "rule": not_applicable("world with detailed sentences") if detailed else rule,
            "template": template,
        },
    )


@lru_cache(maxsize=1)
def _vocabulary() -> tuple[str, ...]:
    """Whole English-looking words from CLIP's BPE vocabulary (the pool of random words)."""
    raw = resources.files("open_clip").joinpath("bpe_simple_vocab_16e6.txt.gz").read_bytes()
    words = set()
    for line in gzip.decompress(raw).decode("utf-8").splitlines()[1:]:
        token = "".join(line.split(" ")[:2])  # a merge "ele phant</w>" makes the token "elephant</w>"
        if token.endswith("</w>") and token[:-4].isascii() and token[:-4].isalpha() and len(token) >= 8:
            words.add(token[:-4].lower())
    return tuple(sorted(words))


def _base_set(
    classes: Sequence[str], base: Mapping, num_desc: int, detailed: bool, seed: int, native
) -> DescriptionSet:
    from hydra.utils import instantiate

    return instantiate(
        dict(base), classes=list(classes), num_desc=num_desc, detailed=detailed, seed=seed, native=native
    )


def waffle(
    classes: Sequence[str],
    *,
    base: Mapping,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    template: str = DEFAULT_TEMPLATE,
    native: Mapping | None = None,
) -> DescriptionSet:
    """WaffleCLIP-style control: random words and random character strings, as many per class as ``base``."""
    reference = _base_set(classes, base, num_desc, detailed, seed, native)
    rng = random.Random(seed)
    vocab = _vocabulary()
    letters = "abcdefghijklmnopqrstuvwxyz"
    descriptors = []
    for count in reference.counts:
        items = []
        for k in range(count):
            if k % 2 == 0:
                items.append(" ".join(rng.choice(vocab) for _ in range(2)))
            else:
                items.append("".join(rng.choice(letters) for _ in range(rng.randint(5, 10))))
        descriptors.append(items)
    return DescriptionSet(
        source="waffle",
        classes=list(classes),
        descriptors=descriptors,
        texts=[
            [template.format(classname=c, descriptor=f"which has {d}") for d in ds]
            for c, ds in zip(classes, descriptors)
        ],
        options={
            "base": reference.source,
            "num_desc": reference.options.get("num_desc"),
            "detailed": not_applicable("waffle"),
            "seed": seed,
            "template": template,
        },
    )


def _derangement(n: int, rng: random.Random) -> list[int]:
    if n < 2:
        raise DescriptionError("the swapped control needs at least 2 classes")
    while True:
        perm = list(range(n))
        rng.shuffle(perm)
        if all(i != p for i, p in enumerate(perm)):
            return perm


def _rewrite(reference: DescriptionSet, source: str, descriptors: list[list[str]], seed: int) -> DescriptionSet:
    """Re-attach descriptors to class names the way the base source formats them."""
    classes = reference.classes
    template = reference.options.get("template", DEFAULT_TEMPLATE)
    rule = reference.options.get("rule", "corrected")
    as_is = not isinstance(rule, str) or rule.startswith("not applicable")
    return DescriptionSet(
        source=source,
        classes=classes,
        descriptors=descriptors,
        texts=_format_all(classes, descriptors, as_is=as_is, rule="corrected" if as_is else rule, template=template),
        options={**reference.options, "base": reference.source, "seed": seed},
    )


def swapped(
    classes: Sequence[str],
    *,
    base: Mapping,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    native: Mapping | None = None,
) -> DescriptionSet:
    """Control: each class gets another class's descriptors (a seeded derangement)."""
    reference = _base_set(classes, base, num_desc, detailed, seed, native)
    perm = _derangement(len(classes), random.Random(seed))
    out = _rewrite(reference, "swapped", [reference.descriptors[p] for p in perm], seed)
    out.meta["taken_from"] = {c: classes[p] for c, p in zip(classes, perm)}
    return out


def shuffled(
    classes: Sequence[str],
    *,
    base: Mapping,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    native: Mapping | None = None,
) -> DescriptionSet:
    """Control: all descriptors pooled, shuffled and dealt back with each class's count."""
    reference = _base_set(classes, base, num_desc, detailed, seed, native)
    pool = [d for ds in reference.descriptors for d in ds]
    random.Random(seed).shuffle(pool)
    dealt, start = [], 0
    for ds in reference.descriptors:
        dealt.append(pool[start : start + len(ds)])
        start += len(ds)
    return _rewrite(reference, "shuffled", dealt, seed)
