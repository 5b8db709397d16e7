"""The openai backend against a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import time

import pytest

from descbench.core.errors import DescriptionError
from descbench.descriptions.llm import BackendError, OpenAIBackend, generate_descriptions
from tests.openai_server import OpenAIStubServer, Reply, bullets_for, canned

OPTS = dict(num_desc=3, detailed=False, instruction="none", num_examples=2, progress=False)


def backend(server, **kw):
    kw.setdefault("max_retries", 3)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("retry_delay_scale", 0.1)  # the client's 0.5 s, 1 s, 2 s ... waits become 0.05 s, 0.1 s, 0.2 s
    return OpenAIBackend("stub-model", base_url=server.base_url, **kw)


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_normal_answers(tmp_path, api):
    with OpenAIStubServer() as server:
        ds = generate_descriptions(
            ["tiger", "coffee mug"], backend=backend(server, api=api), cache_dir=tmp_path, **OPTS
        )
    assert ds.descriptors == [[f"tiger feature {i}" for i in (1, 2, 3)], [f"coffee mug feature {i}" for i in (1, 2, 3)]]
    assert ds.texts[0][0] == "tiger, which has tiger feature 1"
    assert ds.options["backend"] == "openai" and ds.options["model"] == "stub-model" and ds.options["api"] == api
    req = server.requests[0]
    assert req.path == f"/v1/{'chat/completions' if api == 'chat' else 'completions'}"
    assert req.body["model"] == "stub-model" and req.body["temperature"] == 0.0
    if api == "chat":
        roles = [m["role"] for m in req.body["messages"]]
        assert roles == ["user", "assistant", "user", "assistant", "user"]
    else:
        assert req.body["prompt"] == ds.meta["prompts"][req.classname]
        assert req.body["prompt"].endswith("in a photo:\n- ")


def test_rate_limit_then_success_backs_off(tmp_path):
    count = {"n": 0}

    def respond(req):
        count["n"] += 1
        return Reply(status=429) if count["n"] <= 2 else canned(req)

    with OpenAIStubServer(respond) as server:
        ds = generate_descriptions(["tiger"], backend=backend(server), cache_dir=tmp_path, **OPTS)
    assert ds.descriptors == [["tiger feature 1", "tiger feature 2", "tiger feature 3"]]
    times = [r.time for r in server.requests]
    assert len(times) == 3
    gaps = [b - a for a, b in zip(times, times[1:])]
    # client's exponential schedule x 0.1: 0.05 s then 0.1 s, each minus up to 25 % jitter
    assert gaps[0] >= 0.05 * 0.75 - 0.005 and gaps[1] >= 0.1 * 0.75 - 0.005
    assert gaps[1] > gaps[0] * 1.2  # it grows


def test_server_error_until_give_up_keeps_finished_classes(tmp_path):
    def respond(req):
        return Reply(status=500) if req.classname == "stop sign" else canned(req)

    classes = ["tiger", "coffee mug", "stop sign"]
    with OpenAIStubServer(respond) as server:
        with pytest.raises(BackendError) as err:
            generate_descriptions(
                classes, backend=backend(server, max_retries=2), cache_dir=tmp_path, concurrency=1, **OPTS
            )
        assert server.calls_for("stop sign") == 3  # first try + 2 retries
    msg = str(err.value)
    assert "OpenAIBackend" in msg and "HTTP 500" in msg and "1 of 3 classes missing" in msg and "stop sign" in msg
    cached = sorted(json.loads(p.read_text())["class"] for p in tmp_path.glob("*.json"))
    assert cached == ["coffee mug", "tiger"]
    # the rerun asks only for the missing class
    with OpenAIStubServer() as server:
        ds = generate_descriptions(classes, backend=backend(server), cache_dir=tmp_path, **OPTS)
        assert [r.classname for r in server.requests] == ["stop sign"]
    assert ds.meta["num_cached"] == 2 and ds.meta["num_generated"] == 1


def malformed(req):
    if req.classname == "tiger":
        return Reply(text="Tigers are big cats with stripes.")  # no bullet
    if req.classname == "coffee mug":
        return Reply(text="  \n- \n-   \n")  # only empty bullets
    return canned(req)


def test_answers_without_bullets_are_retried_then_an_error_and_never_cached(tmp_path):
    classes = ["tiger", "coffee mug", "stop sign"]
    with OpenAIStubServer(malformed) as server:
        with pytest.raises(DescriptionError) as err:
            generate_descriptions(
                classes, backend=backend(server, api="chat", max_retries=2), cache_dir=tmp_path, **OPTS
            )
        assert server.calls_for("tiger") == 3 and server.calls_for("coffee mug") == 3  # first try + 2 retries
        assert server.calls_for("stop sign") == 1
    assert str(err.value) == (
        "llm descriptions: the model's answer has no '- ' bullet for 2 class(es) after 2 retries: "
        "['tiger', 'coffee mug']; nothing was cached for them (rerun to ask again, or "
        "describe.on_empty=classname to fall back to the class name)"
    )
    cached = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert [r["class"] for r in cached] == ["stop sign"] and all(r["descriptors"] for r in cached)
    # a healthy server later: only the two classes are asked again
    with OpenAIStubServer() as server:
        ds = generate_descriptions(classes, backend=backend(server, api="chat"), cache_dir=tmp_path, **OPTS)
        assert sorted(r.classname for r in server.requests) == ["coffee mug", "tiger"]
    assert ds.stats["num_fallback"] == 0 and ds.meta["num_cached"] == 1


def test_empty_answer_then_bullets_is_retried(tmp_path):
    count = {"n": 0}

    def respond(req):
        count["n"] += 1
        return Reply(text="") if count["n"] == 1 else canned(req)

    with OpenAIStubServer(respond) as server:
        ds = generate_descriptions(["tiger"], backend=backend(server, max_retries=1), cache_dir=tmp_path, **OPTS)
        assert len(server.requests) == 2
    assert ds.descriptors == [["tiger feature 1", "tiger feature 2", "tiger feature 3"]]


def test_on_empty_classname_falls_back_lists_and_does_not_cache(tmp_path):
    with OpenAIStubServer(malformed) as server:
        ds = generate_descriptions(
            ["tiger", "coffee mug", "stop sign"],
            backend=backend(server, api="chat", max_retries=0),
            cache_dir=tmp_path,
            on_empty="classname",
            **OPTS,
        )
    assert ds.stats["fallback_classes"] == ["tiger", "coffee mug"] and ds.stats["num_fallback"] == 2
    assert ds.texts[:2] == [["tiger"], ["coffee mug"]] and ds.descriptors[:2] == [[], []]
    assert ds.meta["raw"]["tiger"] == "Tigers are big cats with stripes."
    assert ds.descriptors[2] == ["stop sign feature 1", "stop sign feature 2", "stop sign feature 3"]
    assert ds.options["on_empty"] == "classname" and ds.meta["num_generated"] == 1
    assert [json.loads(p.read_text())["class"] for p in tmp_path.glob("*.json")] == ["stop sign"]


def test_empty_choices_body_is_a_failed_generation_not_a_crash(tmp_path):
    with OpenAIStubServer(
        lambda req: Reply(body={"id": "x", "object": "text_completion", "created": 0, "model": "m", "choices": []})
    ) as server:
        with pytest.raises(DescriptionError, match=r"no '- ' bullet for 1 class\(es\) after 0 retries: \['tiger'\]"):
            generate_descriptions(["tiger"], backend=backend(server, max_retries=0), cache_dir=tmp_path, **OPTS)
    assert not list(tmp_path.glob("*.json"))


def test_wrong_counts_recorded_and_excluded_on_request(tmp_path):
    def respond(req):
        n = {"tiger": 3, "coffee mug": 2, "stop sign": 4}[req.classname]
        return Reply(text=bullets_for(req.classname, n))

    classes = ["tiger", "coffee mug", "stop sign"]
    with OpenAIStubServer(respond) as server:
        kept = generate_descriptions(classes, backend=backend(server), cache_dir=tmp_path, **OPTS)
        dropped = generate_descriptions(
            classes, backend=backend(server), cache_dir=tmp_path, exclude_wrong_count="class", **OPTS
        )
        point = generate_descriptions(
            classes, backend=backend(server), cache_dir=tmp_path, exclude_wrong_count="point", **OPTS
        )
    assert kept.meta["returned_counts"] == [3, 2, 4] and kept.excluded == []
    assert kept.stats["num_wrong_count"] == 2 and kept.stats["wrong_count_classes"] == ["coffee mug", "stop sign"]
    assert kept.stats["num_short"] == 1 and kept.stats["num_excluded"] == 0
    assert kept.stats["expected_counts"] == [3] and kept.stats["wrong_count_share"] == pytest.approx(2 / 3)
    assert kept.options["exclude_wrong_count"] == "off" and kept.stats["point_excluded"] is False
    # class: today's reading, the classes whose count differs leave the metrics
    assert dropped.excluded == [1, 2] and dropped.stats["num_excluded"] == 2
    assert dropped.options["exclude_wrong_count"] == "class" and dropped.texts == kept.texts
    # point: the study's rule -- 2 of 3 classes answered another count, so the whole point is marked excluded
    assert point.excluded == [] and point.stats["point_excluded"] is True and point.stats["num_excluded"] == 0
    with pytest.raises(DescriptionError, match=r"exclude_wrong_count=True is not one of off, class, point"):
        generate_descriptions(classes, backend=backend(server), cache_dir=tmp_path, exclude_wrong_count=True, **OPTS)


def test_point_exclusion_needs_most_classes_and_accepts_each_examples_own_count(tmp_path):
    """At |D| = 7 the study bank's examples show 7 and 8 bullets (Menon's prompt): 7 and 8 are both the
    examples' count; the point is excluded only when more than half of the classes answered another."""
    counts = {"tiger": 8, "coffee mug": 7, "stop sign": 5, "lemur": 6}
    # the study bank's prompt ends with Menon's "-\n" (no open bullet): every answered line is its own "- " bullet
    reply = lambda req: Reply(text="- " + bullets_for(req.classname, counts[req.classname]))  # noqa: E731
    with OpenAIStubServer(reply) as server:
        options = {**OPTS, "num_desc": 7, "bank": "study", "num_examples": 2, "exclude_wrong_count": "point"}
        half = generate_descriptions(list(counts), backend=backend(server), cache_dir=tmp_path, **options)
        most = generate_descriptions(
            ["stop sign", "lemur", "tiger"], backend=backend(server), cache_dir=tmp_path, **options
        )
    assert half.stats["expected_counts"] == [7, 8] and half.stats["wrong_count_classes"] == ["stop sign", "lemur"]
    assert half.stats["wrong_count_share"] == 0.5 and half.stats["point_excluded"] is False
    assert most.stats["wrong_count_share"] == pytest.approx(2 / 3) and most.stats["point_excluded"] is True


def test_timeout_retried_then_clear_error(tmp_path):
    with OpenAIStubServer(lambda req: Reply(text=bullets_for("x"), delay=1.0)) as server:
        t0 = time.monotonic()
        with pytest.raises(BackendError, match=r"OpenAIBackend: request timed out \(0.3 s\) after 1 retries"):
            generate_descriptions(
                ["tiger"], backend=backend(server, timeout=0.3, max_retries=1), cache_dir=tmp_path, **OPTS
            )
        assert time.monotonic() - t0 < 3.0
        assert len(server.requests) == 2
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.parametrize("drip_headers", [False, True], ids=["body", "headers"])
def test_a_server_dripping_its_answer_meets_the_deadline_retries_included(tmp_path, drip_headers):
    """``timeout`` is a deadline per request, not per read: one byte every 0.2 s never lets a read time out, yet
    each of the 2 attempts ends at 1 s (the answer would take ~40 s)."""
    with OpenAIStubServer(lambda req: Reply(text=bullets_for("x"), drip=0.2, drip_headers=drip_headers)) as server:
        t0 = time.monotonic()
        with pytest.raises(BackendError, match=r"request timed out \(1 s\) after 1 retries .*: no complete answer"):
            generate_descriptions(
                ["tiger"], backend=backend(server, timeout=1.0, max_retries=1), cache_dir=tmp_path, **OPTS
            )
        took = time.monotonic() - t0
        assert len(server.requests) == 2
    assert 2.0 <= took < 2.0 + 1.5, took  # (max_retries + 1) x timeout, the backoff waits and the client set-up
    assert not list(tmp_path.glob("*.json"))


def test_a_slow_but_timely_answer_is_kept(tmp_path):
    with OpenAIStubServer(lambda req: Reply(text=bullets_for(req.classname), drip=0.002)) as server:
        ds = generate_descriptions(
            ["tiger"], backend=backend(server, timeout=5.0, max_retries=0), cache_dir=tmp_path, **OPTS
        )
    assert ds.descriptors == [["tiger feature 1", "tiger feature 2", "tiger feature 3"]]


def test_timeout_then_success(tmp_path):
    count = {"n": 0}

    def respond(req):
        count["n"] += 1
        return Reply(text=bullets_for(req.classname), delay=1.0 if count["n"] == 1 else 0.0)

    with OpenAIStubServer(respond) as server:
        ds = generate_descriptions(["tiger"], backend=backend(server, timeout=0.3), cache_dir=tmp_path, **OPTS)
    assert ds.descriptors[0][0] == "tiger feature 1" and len(server.requests) == 2


def test_key_from_environment_only(tmp_path, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("MY_LLM_KEY", secret)
    with OpenAIStubServer() as server:
        b = backend(server, api_key_env="MY_LLM_KEY")
        ds = generate_descriptions(["tiger"], backend=b, cache_dir=tmp_path, **OPTS)
        headers = {k.lower(): v for k, v in server.requests[0].headers.items()}
        assert headers["authorization"] == f"Bearer {secret}"  # it is used ...
    for text in (repr(b), json.dumps(b.identity()), json.dumps(ds.to_json()), json.dumps(vars(b), default=repr)):
        assert secret not in text  # ... and never shown
    assert all(secret not in p.read_text() for p in tmp_path.glob("*.json"))


def test_missing_key_for_the_real_api_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BackendError, match="environment variable OPENAI_API_KEY is not set"):
        OpenAIBackend("gpt-4o-mini", api="chat").generate("Q: x")
