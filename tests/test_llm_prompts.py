"""The prompt builder: golden files written by hand, structural checks on every combination, parsing."""

from __future__ import annotations

import itertools
import re
from importlib import resources
from pathlib import Path

import pytest

from descbench.core.errors import DescriptionError
from descbench.descriptions.llm import (
    PromptError,
    build_messages,
    build_prompt,
    load_bank,
    parse_descriptors,
    to_chat_messages,
)
from descbench.descriptions.llm.prompts import bank_limits, expected_counts, render_instruction

GOLDEN = Path(__file__).parent / "golden" / "llm"


def golden(name: str) -> str:
    # The files end with one newline after the open "- " line; the prompt itself does not.
    text = (GOLDEN / name).read_text(encoding="utf-8")
    assert text.endswith("- \n"), f"{name}: the trailing space of the open bullet was lost"
    return text[:-1]


@pytest.mark.parametrize(
    "name, classname, options",
    [
        ("words_nd2_ne1_none_tiger.txt", "tiger", dict(num_desc=2, detailed=False, instruction="none", num_examples=1)),
        (
            "sentences_nd3_ne2_role_stop_sign.txt",
            "stop sign",
            dict(num_desc=3, detailed=True, instruction="role", num_examples=2),
        ),
        (
            "words_nd1_ne3_rule_coffee_mug.txt",
            "coffee mug",
            dict(num_desc=1, detailed=False, instruction="rule", num_examples=3),
        ),
        (
            "words_nd2_ne1_free_text_lemur.txt",
            "lemur",
            dict(num_desc=2, detailed=False, instruction="Answer briefly.", num_examples=1),
        ),
    ],
)
def test_golden(name, classname, options):
    assert build_prompt(classname, **options) == golden(name)


STUDY_GOLDEN = [
    # the study's prompt table, |D(c)|=4 words: the two example blocks verbatim, then the query
    ("study_words_nd4_ne2_tench.txt", dict(num_desc=4, detailed=False, instruction="none")),
    # its |D(c)|=3 detailed lemur example with the role text placed before the examples
    ("study_sentences_nd3_ne1_role_tench.txt", dict(num_desc=3, detailed=True, instruction="role", num_examples=1)),
]


@pytest.mark.parametrize("name, options", STUDY_GOLDEN)
def test_study_bank_renders_the_published_prompt(name, options):
    assert build_prompt("tench", bank="study", **options) == (GOLDEN / name).read_text(encoding="utf-8")


def test_study_bank_at_7_words_is_menon_and_vondricks_prompt_byte_for_byte():
    """The study's |D| = 7 word point is Menon & Vondrick's setting. The golden file is a copy of the text that
    ``generate_prompt("tench")`` returns in their release (sachit-menon/classify_by_description_release,
    ``generate_descriptors.py``): lemur with 7 bullets, television with 8, colour second, the final question
    without "visual", ending with an open "-" line."""
    menon = (GOLDEN / "menon_generate_prompt_tench.txt").read_text(encoding="utf-8")
    assert build_prompt("tench", num_desc=7, detailed=False, bank="study") == menon
    assert build_prompt("tench", num_desc=7, detailed=False, num_examples=2, bank="study") == menon
    # each example carries its own count there: an answer of 7 or of 8 bullets has the examples' count
    assert expected_counts("study", num_desc=7, detailed=False) == [7, 8]
    assert expected_counts("study", num_desc=7, detailed=False, num_examples=1) == [7]
    assert expected_counts("study", num_desc=4, detailed=False) == [4]
    assert expected_counts("study", num_desc=3, detailed=True) == [3]
    # |D| = 5 and 6 are ours: the study's |D| = 4 subset first, then Menon's remaining bullets in his order
    six = build_prompt("tench", num_desc=6, detailed=False, bank="study")
    assert "- large eyes\n- black, grey, white, brown, or red-brown\n- furry bodies\n\n" in six


def test_a_bank_with_a_bad_per_count_list_is_one_line(tmp_path):
    path = tmp_path / "mine.yaml"
    text = (resources.files("descbench.descriptions.llm.banks") / "study.yaml").read_text()
    path.write_text(
        text.replace("name: study", "name: mine").replace("    words_at:\n      7:", "    words_at:\n      x:", 1)
    )
    with pytest.raises(PromptError, match=r"example 'lemur': words_at must map a num_desc \(an integer >= 1\)"):
        load_bank(str(path))


def test_study_bank_texts_and_order():
    bank = load_bank("study")
    assert bank["num_examples"] == 2 and [ex["name"] for ex in bank["examples"]] == ["lemur", "television"]
    assert render_instruction("rule", "study") == (
        "Create only static visual features. Avoid creating dynamic visual features, such as movements. "
        "Create features that are not shared in other object categories. Create features without considering "
        "their background features. If more than one object exists, create each unique visual features. "
        "Create a particularly unique feature of the design or shape of this object."
    )
    # Menon & Vondrick's script bullets, all of them, with the study's |D|=4 subset first
    menon = {
        "lemur": ["four-limbed primate", "black, grey, white, brown, or red-brown",
                  "wet and hairless nose with curved nostrils", "long tail", "large eyes", "furry bodies",
                  "clawed hands and feet"],
        "television": ["electronic device", "black or grey", "a large, rectangular screen",
                       "a stand or mount to support the screen", "one or more speakers", "a power cord",
                       "input ports for connecting to other devices", "a remote control"],
    }  # fmt: skip
    for ex in bank["examples"]:
        assert sorted(ex["words"]) == sorted(menon[ex["name"]])
        rest = [w for w in menon[ex["name"]] if w not in ex["words"][:4]]
        assert ex["words"][4:] == rest  # Menon's order after the study's four
    assert bank_limits("study", detailed=False, num_examples=2) == (7, 2)
    assert bank_limits("study", detailed=False, num_examples=None)[0] == 7
    with pytest.raises(
        PromptError, match=r"^num_desc=8 but bank 'study' has 7 word bullets per example in its first 2 example\(s\)"
    ):
        build_prompt("tench", num_desc=8, detailed=False, bank="study")
    with pytest.raises(
        PromptError, match=r"num_examples must be an integer in 1\.\.2 \(example objects in bank 'study'\)"
    ):
        build_prompt("tench", num_desc=2, detailed=False, num_examples=3, bank="study")


def test_bank_from_a_file_and_unknown_bank(tmp_path):
    path = tmp_path / "mine.yaml"
    text = (resources.files("descbench.descriptions.llm.banks") / "study.yaml").read_text()
    path.write_text(text.replace("name: study", "name: mine"))
    assert build_prompt("tench", num_desc=4, detailed=False, bank=str(path)) == build_prompt(
        "tench", num_desc=4, detailed=False, bank="study"
    )
    with pytest.raises(PromptError, match=r"describe.bank: no bank named 'nope' \(shipped: \['project', 'study'\]\)"):
        load_bank("nope")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nexamples: []\n")
    with pytest.raises(
        PromptError, match=r"lacks \['question', 'final_question', 'answer', 'ending', 'role', 'rule', 'num_examples'\]"
    ):
        load_bank(str(broken))


def test_study_chat_messages_drop_the_query_stub():
    msgs = build_messages("tench", num_desc=2, detailed=False, bank="study")
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert msgs[-1]["content"] == "Q: What are useful features for distinguishing a tench in a photo?"
    assert msgs[1]["content"].endswith("- four-limbed primate\n- wet and hairless nose with curved nostrils")


def test_bank_supports_every_combination():
    bank = load_bank()
    assert len(bank["examples"]) >= 6
    assert all(len(ex["words"]) >= 8 and len(ex["sentences"]) >= 8 for ex in bank["examples"])
    assert bank_limits()[0] >= 8 and bank_limits()[1] >= 6
    names = [ex["name"] for ex in bank["examples"]]
    assert len(set(names)) == len(names)


QUESTION = re.compile(r"^Q: What are useful visual features for distinguishing a (.+) in a photo\?$")


@pytest.mark.parametrize("instruction", ["none", "role", "rule"])
def test_structure_of_every_combination(instruction):
    bank = load_bank()
    role = bank["role"].strip()
    for num_desc, detailed, num_examples in itertools.product(range(1, 9), (False, True), range(1, 7)):
        prompt = build_prompt(
            "zebra", num_desc=num_desc, detailed=detailed, instruction=instruction, num_examples=num_examples
        )
        blocks = prompt.split("\n\n")
        head = {"none": 0, "role": 1, "rule": 1}[instruction]
        if instruction == "role":
            assert blocks[0] == role
        if instruction == "rule":
            assert blocks[0] == bank["rule"].strip() and len(blocks[0].splitlines()) == 7
        if instruction == "none":
            assert blocks[0].startswith("Q: ")
        examples, query = blocks[head:-1], blocks[-1]
        assert len(examples) == num_examples
        for ex, block in zip(bank["examples"], examples):
            lines = block.splitlines()
            assert QUESTION.match(lines[0]).group(1) == ex["name"]
            assert (
                lines[1] == f"A: There are several useful visual features to tell there is a {ex['name']} in a photo:"
            )
            bullets = [ln[2:] for ln in lines[2:]]
            assert all(ln.startswith("- ") for ln in lines[2:])
            assert bullets == ex["sentences" if detailed else "words"][:num_desc]
        assert query.splitlines() == [
            "Q: What are useful visual features for distinguishing a zebra in a photo?",
            "A: There are several useful visual features to tell there is a zebra in a photo:",
            "- ",
        ] and query.endswith("- ")


def test_words_and_sentences_differ():
    words = build_prompt("cat", num_desc=3, detailed=False, num_examples=2)
    sentences = build_prompt("cat", num_desc=3, detailed=True, num_examples=2)
    assert "- two wheels of equal size" in words and "- A bicycle has two thin spoked wheels" in sentences


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(num_desc=0, num_examples=1), r"^num_desc must be an integer >= 1, got 0"),
        (dict(num_desc=9, num_examples=1), r"^num_desc=9 but bank 'project' has 8 word bullets .*use num_desc=1\.\.8"),
        (dict(num_desc=2.0, num_examples=1), r"^num_desc must be an integer >= 1, got 2\.0"),
        (dict(num_desc=True, num_examples=1), r"^num_desc must be an integer >= 1, got True"),
        (dict(num_desc=2, num_examples=0), r"num_examples must be an integer in 1\.\.7"),
        (dict(num_desc=2, num_examples=8), r"num_examples must be an integer in 1\.\.7"),
    ],
)
def test_out_of_range_options(options, message):
    with pytest.raises(DescriptionError, match=message):  # PromptError for the bank's limits
        build_prompt("cat", detailed=False, **options)


def test_blank_instruction_is_none_and_free_text_is_verbatim():
    base = build_prompt("cat", num_desc=2, detailed=False, num_examples=1)
    assert build_prompt("cat", num_desc=2, detailed=False, num_examples=1, instruction="") == base
    assert build_prompt("cat", num_desc=2, detailed=False, num_examples=1, instruction=None) == base
    text = "Be concise.\n\nDescribe colours first."
    assert build_prompt("cat", num_desc=2, detailed=False, num_examples=1, instruction=text) == text + "\n\n" + base


def test_chat_messages():
    msgs = build_messages(
        "cat", num_desc=2, detailed=False, instruction="Be concise.\n\nColours first.", num_examples=2
    )
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "Be concise.\n\nColours first."
    assert msgs[2]["content"].endswith("- two wheels of equal size\n- thin metal frame")
    assert msgs[-1]["content"] == "Q: What are useful visual features for distinguishing a cat in a photo?"
    plain = to_chat_messages(build_prompt("cat", num_desc=1, detailed=True, num_examples=1))
    assert [m["role"] for m in plain] == ["user", "assistant", "user"]


def test_parse():
    raw = "black stripes\n- orange fur\n  -   Black Stripes  \n- \nsome chatter\n- white belly\n\nQ: What are useful ...\n- not this"
    assert parse_descriptors(raw, continues_bullet=True) == ["black stripes", "orange fur", "white belly"]
    assert parse_descriptors("A: There are ...:\n- a\n- b\n- A") == ["a", "b"]
    assert parse_descriptors("no bullets at all") == []
    assert parse_descriptors("") == []
    assert parse_descriptors("-dash without space\n--\n- ok") == ["ok"]
