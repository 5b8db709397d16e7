"""Prompts for description generation under prompt options (SPEC §3).

A prompt is an optional instruction, ``num_examples`` in-context examples from an example
bank and the query, in the question/answer form of the published method. Banks are data
files (``banks/<name>.yaml``, or any YAML path) read by :func:`load_bank`: ``project`` (the
project's own everyday objects) and ``study`` (the prompt-option study's lemur and
television examples and its role/rule texts). The builders are pure: the text depends on
the options only.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from descbench.core.errors import PromptError
from descbench.descriptions.sources import check_num_desc

BULLET = "- "
NAMED_INSTRUCTIONS = ("none", "role", "rule")
DEFAULT_BANK = "project"
_TEXT_FIELDS = ("question", "final_question", "answer", "ending", "role", "rule")


def bank_names() -> list[str]:
    """The banks shipped with the package."""
    folder = resources.files("descbench.descriptions.llm.banks")
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@lru_cache(maxsize=8)
def load_bank(bank: str = DEFAULT_BANK) -> dict[str, Any]:
    """An example bank by name (``project``, ``study``) or by path to a YAML file of the same form."""
    if bank in bank_names():
        text = resources.files("descbench.descriptions.llm.banks").joinpath(f"{bank}.yaml").read_text(encoding="utf-8")
        where = f"bank {bank!r}"
    else:
        path = Path(bank).expanduser()
        if not path.is_file():
            raise PromptError(f"describe.bank: no bank named {bank!r} (shipped: {bank_names()}) and no file at {path}")
        text = path.read_text(encoding="utf-8")
        where = f"bank file {path}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PromptError(f"{where} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise PromptError(f"{where} must be a mapping with {list(_TEXT_FIELDS)} and examples")
    missing = [k for k in (*_TEXT_FIELDS, "examples", "num_examples") if k not in data]
    if missing:
        raise PromptError(f"{where} lacks {missing}")
    for k in _TEXT_FIELDS:
        if not isinstance(data[k], str):
            raise PromptError(f"{where}: {k} must be a string")
    examples = data["examples"]
    if not isinstance(examples, list) or not examples:
        raise PromptError(f"{where}: examples must be a non-empty list")
    for ex in examples:
        if not isinstance(ex, dict) or not isinstance(ex.get("name"), str):
            raise PromptError(f"{where}: every example needs a name, words and sentences")
        for kind in ("words", "sentences"):
            items = ex.get(kind)
            if not isinstance(items, list) or not items or not all(isinstance(x, str) and x.strip() for x in items):
                raise PromptError(f"{where}: example {ex['name']!r} needs a non-empty list of {kind}")
            own = ex.get(f"{kind}_at", {})
            ok = isinstance(own, dict) and all(
                isinstance(k, int)
                and not isinstance(k, bool)
                and k >= 1
                and isinstance(v, list)
                and v
                and all(isinstance(x, str) and x.strip() for x in v)
                for k, v in own.items()
            )
            if not ok:
                raise PromptError(
                    f"{where}: example {ex['name']!r}: {kind}_at must map a num_desc (an integer >= 1) to the "
                    "non-empty list of bullets the example shows at that num_desc"
                )
    data.setdefault("name", bank)
    return data


def bank_limits(
    bank: str = DEFAULT_BANK, *, detailed: bool = False, num_examples: int | None = None
) -> tuple[int, int]:
    """``(max num_desc, max num_examples)``: bullets every shown example has, and the examples in the bank."""
    data = load_bank(bank)
    shown = data["examples"][: num_examples or len(data["examples"])]
    kind = "sentences" if detailed else "words"
    return min(len(ex[kind]) for ex in shown), len(data["examples"])


def resolve_num_examples(bank: str, num_examples: int | None) -> int:
    """``num_examples``, or the bank's own default when it is None."""
    return load_bank(bank)["num_examples"] if num_examples is None else num_examples


def render_instruction(instruction: str | None, bank: str = DEFAULT_BANK) -> str:
    """The instruction block: '' for none, the bank's role/rule text, or free text verbatim."""
    if instruction is None or instruction.strip() == "" or instruction == "none":
        return ""
    if instruction in ("role", "rule"):
        return load_bank(bank)[instruction].strip()
    return instruction.strip()


def _check_options(bank: str, num_desc: Any, detailed: bool, num_examples: Any) -> None:
    data = load_bank(bank)
    max_examples = len(data["examples"])
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or not 1 <= num_examples <= max_examples:
        raise PromptError(
            f"num_examples must be an integer in 1..{max_examples} (example objects in bank {data['name']!r}), "
            f"got {num_examples!r}"
        )
    check_num_desc(num_desc)
    max_desc, _ = bank_limits(bank, detailed=detailed, num_examples=num_examples)
    if num_desc > max_desc:
        kind = "sentence" if detailed else "word"
        raise PromptError(
            f"num_desc={num_desc} but bank {data['name']!r} has {max_desc} {kind} bullets per example in its first "
            f"{num_examples} example(s): use num_desc=1..{max_desc} (or a bank with more bullets, describe.bank)"
        )


def example_bullets(example: dict[str, Any], num_desc: int, detailed: bool) -> list[str]:
    """The bullets an example shows at ``num_desc``: its own list for that ``num_desc`` when the bank gives one
    (``words_at`` / ``sentences_at``: an example may carry its own number of bullets, as Menon & Vondrick's
    television has 8 beside the lemur's 7), else the first ``num_desc`` of its list."""
    kind = "sentences" if detailed else "words"
    own = example.get(f"{kind}_at") or {}
    return list(own[num_desc]) if num_desc in own else list(example[kind][:num_desc])


def expected_counts(
    bank: str = DEFAULT_BANK, *, num_desc: int, detailed: bool, num_examples: int | None = None
) -> list[int]:
    """The bullet counts the shown examples have at ``num_desc`` (usually ``[num_desc]``): an answer "has the
    examples' count" when its count is one of them (the study's exclusion rule)."""
    data = load_bank(bank)
    shown = data["examples"][: resolve_num_examples(bank, num_examples)]
    return sorted({len(example_bullets(ex, num_desc, detailed)) for ex in shown})


def _example_block(bank: dict[str, Any], example: dict[str, Any], num_desc: int, detailed: bool) -> str:
    bullets = example_bullets(example, num_desc, detailed)
    name = example["name"]
    lines = [bank["question"].format(c=name), bank["answer"].format(c=name)] + [BULLET + b for b in bullets]
    return "\n".join(lines)


def build_prompt(
    classname: str,
    *,
    num_desc: int,
    detailed: bool,
    instruction: str | None = "none",
    num_examples: int | None = None,
    bank: str = DEFAULT_BANK,
) -> str:
    """The completion-style prompt for ``classname``; it ends with the bank's ``ending`` (``"- "``: an open bullet)."""
    num_examples = resolve_num_examples(bank, num_examples)
    _check_options(bank, num_desc, bool(detailed), num_examples)
    if not isinstance(classname, str) or not classname.strip():
        raise PromptError(f"class name must be a non-empty string, got {classname!r}")
    data = load_bank(bank)
    blocks = []
    head = render_instruction(instruction, bank)
    if head:
        blocks.append(head)
    blocks += [_example_block(data, ex, num_desc, bool(detailed)) for ex in data["examples"][:num_examples]]
    query = "\n".join([data["final_question"].format(c=classname), data["answer"].format(c=classname)])
    blocks.append(query + "\n" + data["ending"])
    return "\n\n".join(blocks)


def prompt_continues_bullet(prompt: str) -> bool:
    """True when the prompt ends with an open ``"- "`` bullet that the answer continues."""
    return prompt.endswith(BULLET)


def to_chat_messages(prompt: str) -> list[dict[str, str]]:
    """The chat-API form of a prompt made by :func:`build_prompt`.

    The instruction becomes the system message, each example a user question and an
    assistant answer, and the query a final user question (a chat model cannot continue
    an open answer, so the query's answer stub is dropped).
    """
    blocks = prompt.split("\n\n")
    messages: list[dict[str, str]] = []
    head = 0
    while head < len(blocks) and not blocks[head].startswith("Q: "):
        head += 1  # a free-text instruction may itself hold blank lines
    if head:
        messages.append({"role": "system", "content": "\n\n".join(blocks[:head])})
    blocks = blocks[head:]
    for number, block in enumerate(blocks):
        question, _, answer = block.partition("\n")
        messages.append({"role": "user", "content": question})
        if number < len(blocks) - 1 and answer.strip():
            messages.append({"role": "assistant", "content": answer})
    return messages


def build_messages(
    classname: str,
    *,
    num_desc: int,
    detailed: bool,
    instruction: str | None = "none",
    num_examples: int | None = None,
    bank: str = DEFAULT_BANK,
) -> list[dict[str, str]]:
    """The chat-message form of :func:`build_prompt` (system, example turns, query)."""
    return to_chat_messages(
        build_prompt(
            classname,
            num_desc=num_desc,
            detailed=detailed,
            instruction=instruction,
            num_examples=num_examples,
            bank=bank,
        )
    )
