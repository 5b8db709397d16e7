"""Prompts for description generation under prompt options (SPEC §3).

A prompt is an optional instruction, ``num_examples`` in-context examples from the
example bank (``bank.yaml``) and the query, in the question/answer form of the
published method. The builders are pure: the text depends on the options only.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from descbench.errors import PromptError

QUESTION = "Q: What are useful visual features for distinguishing a {c} in a photo?"
ANSWER = "A: There are several useful visual features to tell there is a {c} in a photo:"
BULLET = "- "
NAMED_INSTRUCTIONS = ("none", "role", "rule")


@lru_cache(maxsize=1)
def load_bank() -> dict[str, Any]:
    """The example bank shipped with the package (instructions and example objects)."""
    text = resources.files("descbench.llm").joinpath("bank.yaml").read_text(encoding="utf-8")
    bank = yaml.safe_load(text)
    for ex in bank["examples"]:
        if len(ex["words"]) < 8 or len(ex["sentences"]) < 8:
            raise PromptError(f"example bank: {ex['name']!r} needs at least 8 words and 8 sentences")
    return bank


def bank_limits() -> tuple[int, int]:
    """``(max num_desc, max num_examples)`` that the bank supports."""
    bank = load_bank()
    max_desc = min(min(len(ex["words"]), len(ex["sentences"])) for ex in bank["examples"])
    return max_desc, len(bank["examples"])


def render_instruction(instruction: str | None) -> str:
    """The instruction block: '' for none, the bank's role/rule text, or free text verbatim."""
    if instruction is None or instruction.strip() == "" or instruction == "none":
        return ""
    bank = load_bank()
    if instruction == "role":
        return bank["role"].strip()
    if instruction == "rule":
        rule = bank["rule"]
        lines = [rule["header"]] + [f"{i}. {item}" for i, item in enumerate(rule["items"], 1)]
        return "\n".join(lines)
    return instruction.strip()


def _check_options(num_desc: Any, num_examples: Any) -> None:
    max_desc, max_examples = bank_limits()
    if isinstance(num_desc, bool) or not isinstance(num_desc, int) or not 1 <= num_desc <= max_desc:
        raise PromptError(
            f"num_desc must be an integer in 1..{max_desc} (bullets per example in the bank), got {num_desc!r}"
        )
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or not 1 <= num_examples <= max_examples:
        raise PromptError(
            f"num_examples must be an integer in 1..{max_examples} (example objects in the bank), got {num_examples!r}"
        )


def _example_block(example: dict[str, Any], num_desc: int, detailed: bool) -> str:
    bullets = example["sentences" if detailed else "words"][:num_desc]
    name = example["name"]
    lines = [QUESTION.format(c=name), ANSWER.format(c=name)] + [BULLET + b for b in bullets]
    return "\n".join(lines)


def build_prompt(
    classname: str, *, num_desc: int, detailed: bool, instruction: str | None = "none", num_examples: int
) -> str:
    """The completion-style prompt for ``classname``; it ends with ``"- "`` so the model continues the list."""
    _check_options(num_desc, num_examples)
    if not isinstance(classname, str) or not classname.strip():
        raise PromptError(f"class name must be a non-empty string, got {classname!r}")
    bank = load_bank()
    blocks = []
    head = render_instruction(instruction)
    if head:
        blocks.append(head)
    blocks += [_example_block(ex, num_desc, bool(detailed)) for ex in bank["examples"][:num_examples]]
    blocks.append("\n".join([QUESTION.format(c=classname), ANSWER.format(c=classname), BULLET]))
    return "\n\n".join(blocks)


def to_chat_messages(prompt: str) -> list[dict[str, str]]:
    """The chat-API form of a prompt made by :func:`build_prompt`.

    The instruction becomes the system message, each example a user question and an
    assistant answer, and the query a final user question (a chat model cannot continue
    an open "- " line, so the final answer stub is dropped).
    """
    blocks = prompt.split("\n\n")
    messages: list[dict[str, str]] = []
    head = 0
    while head < len(blocks) and not blocks[head].startswith("Q: "):
        head += 1  # a free-text instruction may itself hold blank lines
    if head:
        messages.append({"role": "system", "content": "\n\n".join(blocks[:head])})
    blocks = blocks[head:]
    for block in blocks:
        question, _, answer = block.partition("\n")
        messages.append({"role": "user", "content": question})
        if answer.strip() and answer.strip() != BULLET.strip() and not answer.endswith("\n" + BULLET):
            messages.append({"role": "assistant", "content": answer})
    return messages


def build_messages(
    classname: str, *, num_desc: int, detailed: bool, instruction: str | None = "none", num_examples: int
) -> list[dict[str, str]]:
    """The chat-message form of :func:`build_prompt` (system, example turns, query)."""
    return to_chat_messages(
        build_prompt(
            classname, num_desc=num_desc, detailed=detailed, instruction=instruction, num_examples=num_examples
        )
    )
