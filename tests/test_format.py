import pytest

from descbench.core.description_text import empty_text, format_description, render_text, which_clause

TABLE = [
    # descriptor, corrected, faithful
    ("a long tail", "which is a long tail", "which is a long tail"),
    ("an orange beak", "which is an orange beak", "which is an orange beak"),
    ("antennae", "which has antennae", "which is antennae"),  # the reference code's startswith('a') flaw
    ("angular wings", "which has angular wings", "which is angular wings"),
    ("has four legs", "which has four legs", "which has four legs"),
    ("often found near water", "which often found near water", "which often found near water"),
    ("typically brown", "which typically brown", "which typically brown"),
    ("may have spots", "which may have spots", "which may have spots"),
    ("can fly", "which can fly", "which can fly"),
    ("used for cutting", "which is used for cutting", "which is used for cutting"),
    ("hasp on the lid", "which has hasp on the lid", "which hasp on the lid"),
    ("striped fur", "which has striped fur", "which has striped fur"),
]


@pytest.mark.parametrize("descriptor,corrected,faithful", TABLE)
def test_which_clause_rules(descriptor, corrected, faithful):
    assert which_clause(descriptor, "corrected") == corrected
    assert which_clause(descriptor, "faithful") == faithful


def test_template_prefix():
    text = format_description("ladybird", "red dots", template="a photo of a {classname}, {descriptor}.")
    assert text == "a photo of a ladybird, which has red dots."


def test_unknown_rule():
    with pytest.raises(ValueError, match="describe.rule='loose' is not one of corrected, faithful"):
        which_clause("x", "loose")


def test_text_forms():
    assert render_text("lemur", "a long tail", form="which") == "lemur, which is a long tail"
    sentence = "Lemurs have long tails."
    assert render_text("lemur", sentence, form="as_written") == sentence
    assert render_text("lemur", sentence, form="prefixed") == "lemur, Lemurs have long tails."
    with pytest.raises(ValueError, match="unknown text form 'plain'"):
        render_text("lemur", sentence, form="plain")


def test_empty_list_texts():
    assert empty_text("donuts", "classname") == "donuts"
    assert empty_text("donuts", "menon") == "donuts, which has "  # Menon's code: "" -> "which has "
    assert empty_text("donuts", "menon", "{classname}, {descriptor}.") == "donuts, which has ."
