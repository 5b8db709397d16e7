"""Control sources (SPEC §2): random descriptors (``waffle``) and descriptors re-dealt among the classes
(``swapped``, ``shuffled``). Without them no claim about descriptions can be judged: random descriptors
recover most of the gain on ImageNet.

A control receives the source it is built from as a callable (``base``: a ``functools.partial`` of another
source, which Hydra builds from the config's ``base:`` node with ``_partial_: true``; by default the source
its registration names) and may repeat itself with fresh seeds (``reps``).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import random
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

from descbench.core.choices import Choice
from descbench.core.description_set import DescriptionError, DescriptionSet, derangement
from descbench.core.description_text import DEFAULT_TEMPLATE, Rule
from descbench.descriptions.registry import description_source
from descbench.descriptions.sources import build_set, not_applicable

#: What a control receives as ``base``: a source with everything but the sweep options bound.
BaseSource = Callable[..., DescriptionSet]


class WaffleKind(Choice):
    """WaffleCLIP's random descriptors: random words, random character strings, or both alternating."""

    words = "words"
    chars = "chars"
    both = "both"


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


@description_source("waffle", base="world")
def waffle(
    classes: Sequence[str],
    *,
    base: BaseSource,
    num_desc: int,
    detailed: bool = False,
    seed: int = 0,
    kind: WaffleKind = WaffleKind.both,
    shared: bool = True,
    count: int | None = None,
    reps: int = 1,
    rule: Rule = Rule.corrected,
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
    kind = WaffleKind.parse(kind, "describe.kind")
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


swapped = description_source("swapped", base="world")(
    _control_source(
        "swapped", _swap, "Control: each class gets another class's descriptors (a seeded derangement per repetition)."
    )
)
shuffled = description_source("shuffled", base="world")(
    _control_source(
        "shuffled", _shuffle, "Control: all descriptors pooled, shuffled and dealt back with each class's count."
    )
)
