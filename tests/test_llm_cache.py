"""The description cache: no second call, atomic files, resume after SIGKILL, no secret anywhere."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from descbench.core.errors import UserError
from descbench.descriptions.llm import (
    DescriptionCache,
    OpenAIBackend,
    cache_key,
    export_descriptors,
    generate_descriptions,
)
from tests.openai_server import OpenAIStubServer, Reply, bullets_for

ROOT = Path(__file__).resolve().parent.parent
OPTS = dict(num_desc=2, detailed=True, instruction="rule", num_examples=2, progress=False)
CLASSES = [f"class {i}" for i in range(8)]
SECRET = "sk-planted-SECRET-abcdef123456"


class CountingBackend:
    """A backend that counts its calls (the injected-client path of the describe source)."""

    continues_prompt = True
    max_concurrency = 4

    def __init__(self, answer=lambda prompt: "red\n- round\n- Red"):
        self.calls: list[str] = []
        self.answer = answer

    def identity(self):
        return {"backend": "counting", "model": "m1", "temperature": 0.0}

    def generate(self, prompt):
        self.calls.append(prompt)
        return self.answer(prompt)


def test_second_run_makes_no_call(tmp_path):
    first = CountingBackend()
    a = generate_descriptions(CLASSES, backend=first, cache_dir=tmp_path, **OPTS)
    assert len(first.calls) == len(CLASSES) and a.meta["num_generated"] == len(CLASSES)
    second = CountingBackend(answer=lambda p: pytest.fail("the cache was not used"))
    b = generate_descriptions(CLASSES, backend=second, cache_dir=tmp_path, **OPTS)
    assert second.calls == [] and b.meta["num_cached"] == len(CLASSES) and b.meta["num_generated"] == 0
    assert a.descriptors == b.descriptors == [["red", "round"]] * len(CLASSES)
    assert a.texts == b.texts and a.meta["prompts"] == b.meta["prompts"]
    # offline reads the same cache and calls nothing
    c = generate_descriptions(CLASSES, backend=second, cache_dir=tmp_path, offline=True, **OPTS)
    assert c.descriptors == a.descriptors and second.calls == []


def test_key_depends_on_prompt_and_sampling(tmp_path):
    b = CountingBackend()
    generate_descriptions(CLASSES[:2], backend=b, cache_dir=tmp_path, **OPTS)
    generate_descriptions(CLASSES[:2], backend=b, cache_dir=tmp_path, **{**OPTS, "num_desc": 3})
    assert len(b.calls) == 4
    ident = {"backend": "x", "model": "m", "temperature": 0.0}
    assert cache_key(ident, "p") != cache_key({**ident, "temperature": 0.7}, "p")
    assert cache_key(ident, "p") != cache_key({**ident, "model": "m2"}, "p")
    assert cache_key(ident, "p") != cache_key(ident, "p ")
    assert cache_key(ident, "p") == cache_key(dict(reversed(list(ident.items()))), "p")


def test_duplicate_class_names_asked_once(tmp_path):
    b = CountingBackend()
    ds = generate_descriptions(["crane", "tiger", "crane"], backend=b, cache_dir=tmp_path, **OPTS)
    assert len(b.calls) == 2 and ds.descriptors[0] == ds.descriptors[2]


def test_offline_lists_missing_classes(tmp_path):
    generate_descriptions(CLASSES[:3], backend=CountingBackend(), cache_dir=tmp_path, **OPTS)
    never = CountingBackend()
    from descbench.core.description_set import DescriptionError

    with pytest.raises(DescriptionError, match=r"offline: 2 class\(es\).*'class 3', 'class 4'"):
        generate_descriptions(CLASSES[:5], backend=never, cache_dir=tmp_path, offline=True, **OPTS)
    assert never.calls == []


def test_record_and_unreadable_file(tmp_path):
    b = CountingBackend()
    ds = generate_descriptions(["tiger"], backend=b, cache_dir=tmp_path, **OPTS)
    key = ds.meta["cache_keys"]["tiger"]
    record = json.loads((tmp_path / f"{key}.json").read_text())
    assert record["prompt"] == ds.meta["prompts"]["tiger"] == b.calls[0]
    assert record["raw"] == "red\n- round\n- Red" and record["descriptors"] == ["red", "round"]
    assert record["backend"] == b.identity() and record["class"] == "tiger" and record["created"]
    (tmp_path / f"{key}.json").write_text('{"key": "trunc')  # a damaged file is a miss, not a crash
    assert DescriptionCache(tmp_path).get(key) is None
    generate_descriptions(["tiger"], backend=b, cache_dir=tmp_path, **OPTS)
    assert len(b.calls) == 2 and DescriptionCache(tmp_path).get(key)["descriptors"] == ["red", "round"]


def test_export(tmp_path):
    ds = generate_descriptions(
        ["b", "a"], backend=CountingBackend(lambda p: "x\n- y"), cache_dir=tmp_path / "c", **OPTS
    )
    path = export_descriptors(ds, tmp_path / "out.json")
    assert path.read_text().startswith('{\n  "b"')  # label order
    assert json.loads(path.read_text()) == {"b": ["x", "y"], "a": ["x", "y"]}


CHILD = textwrap.dedent(
    """
    import logging, sys
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from descbench.descriptions.llm import OpenAIBackend, generate_descriptions
    backend = OpenAIBackend("stub-model", base_url=sys.argv[1], max_retries=0, timeout=30)
    generate_descriptions([f"class {i}" for i in range(8)], backend=backend, cache_dir=sys.argv[2],
                          num_desc=2, detailed=True, instruction="rule", num_examples=2, concurrency=1, progress=True)
    print("finished")
    """
)


def test_sigkill_mid_generation_then_resume(tmp_path):
    cache_dir = tmp_path / "cache"
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "PYTHONPATH": str(ROOT)}
    with OpenAIStubServer(lambda r: Reply(text=bullets_for(r.classname), delay=0.4)) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.base_url, str(cache_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while len(list(cache_dir.glob("*.json"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL and "finished" not in out
        first_round = {c: server.calls_for(c) for c in CLASSES}

    files = list(cache_dir.glob("*.json"))
    assert 3 <= len(files) < len(CLASSES)
    done = set()
    for f in files:  # every file complete and valid
        record = json.loads(f.read_text())
        assert record["descriptors"] == [f"{record['class']} feature {i}" for i in (1, 2, 3)]
        done.add(record["class"])
    assert all(first_round[c] == 1 for c in done)

    with OpenAIStubServer() as server:
        ds = generate_descriptions(
            CLASSES, backend=OpenAIBackend("stub-model", base_url=server.base_url), cache_dir=cache_dir, **OPTS
        )
        asked = [r.classname for r in server.requests]
    assert not set(asked) & done  # no duplicate call for a finished class
    assert sorted(asked) == sorted(set(CLASSES) - done)
    assert ds.meta["num_cached"] == len(done) and all(len(d) == 3 for d in ds.descriptors)
    assert len(list(cache_dir.glob("*.json"))) == len(CLASSES)
    # the key was sent to the server but is in no cache file and not in the child's (debug) logs
    assert SECRET not in err and SECRET not in out
    assert all(SECRET not in p.read_text() for p in cache_dir.iterdir())


def test_key_not_in_logs_in_process(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    with OpenAIStubServer() as server:
        ds = generate_descriptions(
            ["tiger"], backend=OpenAIBackend("m", base_url=server.base_url), cache_dir=tmp_path, **OPTS
        )
    assert (
        ds.descriptors[0]
        and SECRET not in caplog.text
        and "llm descriptions: 1 classes, 0 prompts cached, 1 generated" in caplog.text
    )


def test_detailed_sentences_as_written_prefixed_or_through_the_rule(tmp_path):
    answer = lambda prompt: "Tigers have stripes.\n- They have long tails.\n- a big cat."  # noqa: E731
    opts = dict(num_desc=2, detailed=True, instruction="none", num_examples=1, progress=False)
    plain = generate_descriptions(["tiger"], backend=CountingBackend(answer), cache_dir=tmp_path, **opts)
    assert plain.texts == [["Tigers have stripes.", "They have long tails.", "a big cat."]]
    assert plain.options["detailed_prefix"] == "none" and plain.options["text_form"] == "as_written"
    prefixed = generate_descriptions(
        ["tiger"], backend=CountingBackend(answer), cache_dir=tmp_path, detailed_prefix="name", **opts
    )
    assert prefixed.texts == [["tiger, Tigers have stripes.", "tiger, They have long tails.", "tiger, a big cat."]]
    assert prefixed.options["text_form"] == "prefixed" and prefixed.meta["num_cached"] == 1
    # the study's reading: every description, sentences included, through Menon's "{c}, which (is/has) {d}"
    ruled = generate_descriptions(
        ["tiger"], backend=CountingBackend(answer), cache_dir=tmp_path, detailed_prefix="rule", **opts
    )
    assert ruled.texts == [
        [
            "tiger, which has Tigers have stripes.",
            "tiger, which has They have long tails.",
            "tiger, which is a big cat.",
        ]
    ]
    assert ruled.options["detailed_prefix"] == "rule" and ruled.options["text_form"] == "which"
    assert ruled.options["rule"] == "corrected"
    words = generate_descriptions(
        ["tiger"], backend=CountingBackend(), cache_dir=tmp_path, **{**opts, "detailed": False}, detailed_prefix="name"
    )
    assert words.options["detailed_prefix"] == "not applicable to word bullets"
    assert words.texts == [["tiger, which has red", "tiger, which has round"]]
    for bad, message in (
        ("names", "describe.detailed_prefix='names' is not one of rule, none, name"),
        (True, "true was name"),
    ):
        with pytest.raises(UserError, match=re.escape(message)):
            generate_descriptions(["tiger"], backend=CountingBackend(), cache_dir=tmp_path, detailed_prefix=bad, **opts)


def test_an_answer_beyond_the_size_bounds_is_cut_and_recorded(tmp_path):
    """100,000 bullets keep the first 100; a 5 MB line is cut to the character bound; both recorded, also when
    read back from the cache."""
    from descbench.descriptions.llm.limits import MAX_ANSWER_CHARS, MAX_BULLETS, bound_answer

    many = "\n- ".join(f"feature {i}" for i in range(100_000))  # completions continue the prompt's open "- "
    huge = "x" * 5_000_000
    answers = {"class 0": many, "class 1": huge, "class 2": "red\n- round"}
    backend = CountingBackend(answer=lambda p: answers[next(c for c in answers if f"a {c} in" in p.split("Q:")[-1])])
    options = {**OPTS, "detailed": False}
    first = generate_descriptions(list(answers), backend=backend, cache_dir=tmp_path, **options)
    again = generate_descriptions(list(answers), backend=CountingBackend(pytest.fail), cache_dir=tmp_path, **options)
    for ds in (first, again):
        assert ds.descriptors[0] == [f"feature {i}" for i in range(MAX_BULLETS)]
        assert ds.descriptors[1] == ["x" * MAX_ANSWER_CHARS] and ds.descriptors[2] == ["red", "round"]
        assert ds.stats["num_answers_cut"] == 2 and ds.stats["answers_cut_classes"] == ["class 0", "class 1"]
    records = {json.loads(p.read_text())["class"]: json.loads(p.read_text()) for p in tmp_path.glob("*.json")}
    assert records["class 0"]["cut"] == {"answer_chars": len(many), "bullets": 100_000}
    assert records["class 1"]["cut"] == {"answer_chars": len(huge), "bullets": 1}
    assert len(records["class 1"]["raw"]) == MAX_ANSWER_CHARS and "cut" not in records["class 2"]
    # cut at the last line break before the bound: no half bullet is kept
    assert bound_answer("- aaa\n- bbbbbb", max_chars=10) == ("- aaa", ["aaa"], {"answer_chars": 14, "bullets": 2})
    assert bound_answer("- a\n- b", max_bullets=1) == ("- a\n- b", ["a"], {"answer_chars": 7, "bullets": 2})
    assert bound_answer("- a\n- b") == ("- a\n- b", ["a", "b"], {})
