"""Turning a class name and a descriptor into the text that CLIP encodes (SPEC §2)."""

from __future__ import annotations

import string
from typing import Literal

from descbench.core.choices import Choice
from descbench.core.errors import DescriptionError


class Rule(Choice):
    """The which is/has rule: ``corrected`` tests a word-style descriptor's first word; ``faithful`` reproduces
    the reference code, which tests raw string prefixes (so "antennae" becomes "which is antennae")."""

    corrected = "corrected"
    faithful = "faithful"


# The published convention: "{class}, which (is/has) {descriptor}".
_VERB_FREE = ("has", "often", "typically", "may", "can")
DEFAULT_TEMPLATE = "{classname}, {descriptor}"


def which_clause(descriptor: str, rule: Rule = Rule.corrected) -> str:
    """The "which is/has ..." clause for ``descriptor``.

    ``faithful`` reproduces the reference code, which tests raw string prefixes and so
    also turns "antennae" into "which is antennae"; ``corrected`` tests the first word.
    """
    if rule == "faithful":
        if descriptor.startswith("a") or descriptor.startswith("an"):
            return f"which is {descriptor}"
        if descriptor.startswith(_VERB_FREE):
            return f"which {descriptor}"
        if descriptor.startswith("used"):
            return f"which is {descriptor}"
        return f"which has {descriptor}"
    Rule.parse(rule, "describe.rule")
    first = descriptor.split(maxsplit=1)[0].lower() if descriptor.strip() else ""
    if first in ("a", "an", "used"):
        return f"which is {descriptor}"
    if first in _VERB_FREE:
        return f"which {descriptor}"
    return f"which has {descriptor}"


def format_description(
    classname: str, descriptor: str, *, rule: Rule = Rule.corrected, template: str = DEFAULT_TEMPLATE
) -> str:
    """``template`` filled with the class name and the descriptor's which-clause."""
    return template.format(classname=classname, descriptor=which_clause(descriptor, rule))


def check_template(
    template: object, *, fields: tuple[str, ...], required: str | tuple[str, ...], key: str = "describe.template"
) -> str:
    """``template`` must be a format string using only ``fields``, every ``required`` one among them (one line
    naming ``key``). Used for every text template a user writes (descriptions, REC expressions, keypoint parts).

    A template without its descriptor (or, for ``describe=classname``, its class name; an expression, a part)
    would give every class or candidate the same text: a run that measures nothing, so it is refused.
    """
    shown = ", ".join("{" + f + "}" for f in fields)
    if not isinstance(template, str):
        raise DescriptionError(f"{key} must be a text using {shown}, got {template!r}")
    try:
        used = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise DescriptionError(f"{key}={template!r} is not a format string ({err}): use {shown}") from None
    unknown = sorted({name for name in used if name not in fields})
    if unknown:
        raise DescriptionError(
            f"{key}={template!r} uses {', '.join('{' + u + '}' for u in unknown)}: its fields are {shown} "
            "(write a literal brace as {{ or }})"
        )
    for name in (required,) if isinstance(required, str) else required:
        if name not in used:
            raise DescriptionError(f"{key}={template!r} has no {{{name}}}: every text would be the same")
    try:  # a conversion or format spec the fields cannot take ({descriptor!z}, {descriptor:d})
        template.format(**dict.fromkeys(fields, "x"))
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise DescriptionError(f"{key}={template!r} cannot be filled ({err}): use {shown}") from None
    return template


TextForm = Literal["which", "as_written", "prefixed"]
TEXT_FORMS = ("which", "as_written", "prefixed")


class EmptyMode(Choice):
    """The text of a class whose list is empty: its name alone, what Menon & Vondrick's code encodes
    (``"{class}, which has "``), or an error."""

    classname = "classname"
    menon = "menon"
    error = "error"


def render_text(
    classname: str, descriptor: str, *, form: TextForm, rule: Rule = Rule.corrected, template: str = DEFAULT_TEMPLATE
) -> str:
    """The encoded text of one descriptor.

    ``which``: ``template`` with the which-clause (word-style descriptors, the published
    convention); ``as_written``: the descriptor itself (full sentences, CuPL-style);
    ``prefixed``: ``template`` with the descriptor as written (``"{class}, {sentence}"``).
    """
    if form == "which":
        return format_description(classname, descriptor, rule=rule, template=template)
    if form == "as_written":
        return descriptor
    if form == "prefixed":
        return template.format(classname=classname, descriptor=descriptor)
    raise ValueError(f"unknown text form {form!r}: use one of {TEXT_FORMS}")


def empty_text(classname: str, mode: EmptyMode, template: str = DEFAULT_TEMPLATE) -> str:
    """The one text of a class without descriptors.

    ``classname``: the class name alone; ``menon``: what Menon & Vondrick's code encodes for
    an empty list (its descriptor ``""`` becomes ``"which has "``: ``"{class}, which has "``).
    """
    if mode == "classname":
        return classname
    if mode == "menon":
        return template.format(classname=classname, descriptor=which_clause("", "faithful"))
    raise ValueError(f"no text for an empty list under empty={mode!r}")


class DetailedPrefix(Choice):
    """How a detailed sentence becomes the text CLIP encodes (``describe.detailed_prefix``).

    ``rule``: Menon & Vondrick's "{class}, which (is/has) {description}" on every description, sentences
    included (the prompt-option study scores every description with that formula, so a sentence keeps its
    class); ``none``: the sentence as written (CuPL); ``name``: ``"{class}, {sentence}"`` (the template with
    the sentence as written).
    """

    rule = "rule"
    none = "none"
    name = "name"


#: the text form each choice gives a sentence
SENTENCE_FORMS: dict[str, TextForm] = {"rule": "which", "none": "as_written", "name": "prefixed"}


def sentence_form(prefix: DetailedPrefix | str, key: str = "describe.detailed_prefix") -> TextForm:
    """The :data:`TextForm` of detailed sentences under ``prefix`` (a one-line error naming ``key`` otherwise)."""
    if isinstance(prefix, bool):  # the former true/false option
        raise DescriptionError(f"{key}={prefix!r} is not one of rule, none, name (true was name, false none)")
    return SENTENCE_FORMS[DetailedPrefix.parse(prefix, key).value]
