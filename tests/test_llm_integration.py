"""describe=llm through the Hydra entry points, against the local OpenAI-compatible stub server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hydra.utils import instantiate

from descbench.descriptions.llm import build_prompt
from tests.conftest import ROOT, run_eval
from tests.openai_server import OpenAIStubServer

SECRET = "sk-planted-SECRET-9f8e7d6c5b4a"


def llm_args(server: OpenAIStubServer) -> list[str]:
    return [
        "describe=llm",
        "describe/backend=openai",
        f"describe.backend.base_url={server.base_url}",
        "describe.backend.model=stub-model",
        "describe.detailed=true",
        "describe.instruction=role",
        "num_desc=2",
        "dataset.limit=48",
    ]


def assert_no_secret(*dirs: Path) -> None:
    for d in dirs:
        for path in d.rglob("*"):
            if path.is_file():
                assert SECRET.encode() not in path.read_bytes(), f"API key leaked into {path}"


def test_eval_records_prompt_and_descriptions_and_never_the_key(tmp_path):
    env = {"OPENAI_API_KEY": SECRET, "DESCBENCH_CACHE_DIR": str(tmp_path / "cache")}
    with OpenAIStubServer() as server:
        run = run_eval([*llm_args(server), "logger=csv", f"hydra.run.dir={tmp_path / 'run1'}"], tmp_path, env)
        assert run.returncode == 0, run.stderr[-3000:]
        calls = len(server.requests)
        # the same job again: everything from the cache, no model call
        again = run_eval([*llm_args(server), "logger=csv", f"hydra.run.dir={tmp_path / 'run2'}"], tmp_path, env)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(server.requests) == calls
    results = json.loads((tmp_path / "run1" / "results.json").read_text())
    assert results["describe.source"] == "llm" and results["describe.model"] == "stub-model"
    assert results["describe.detailed"] is True and results["describe.num_desc"] == 2
    assert results["describe.instruction"] == "role" and results["describe.backend"] == "openai"
    saved = json.loads((tmp_path / "run1" / "descriptions.json").read_text())
    assert [entry["index"] for entry in saved["classes"]] == list(range(len(saved["classes"])))
    assert calls == len(saved["classes"])
    for entry in saved["classes"]:
        c = entry["class"]
        assert saved["prompts"][c] == build_prompt(c, num_desc=2, detailed=True, instruction="role", num_examples=3)
        assert entry["descriptors"] == [f"{c} feature {i}" for i in (1, 2, 3)]
        assert entry["texts"][0] == f"{c} feature 1"  # detailed sentences are encoded as written
    assert json.loads((tmp_path / "run2" / "descriptions.json").read_text())["num_generated"] == 0
    assert (tmp_path / "run1" / ".hydra" / "config.yaml").is_file()
    assert_no_secret(tmp_path / "run1", tmp_path / "run2", tmp_path / "cache")
    assert SECRET not in run.stdout + run.stderr + again.stdout + again.stderr


def test_describe_command_pregenerates_then_eval_runs_offline(tmp_path):
    env = {
        **os.environ,
        "OPENAI_API_KEY": SECRET,
        "PYTHONPATH": str(ROOT),
        "DESCBENCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    with OpenAIStubServer() as server:
        gen = subprocess.run(
            [sys.executable, "-m", "descbench.describe", *llm_args(server), f"hydra.run.dir={tmp_path / 'gen'}"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert gen.returncode == 0, gen.stderr[-3000:]
        args = llm_args(server)
    exported = json.loads((tmp_path / "gen" / "descriptors.json").read_text())
    assert len(exported) == len(server.requests) and all(len(v) == 3 for v in exported.values())
    assert "0 cached" in gen.stdout and "generated" in gen.stdout
    # server gone: offline eval must read everything from the cache
    run = run_eval([*args, "describe.offline=true", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["describe.offline"] is True
    # offline with a prompt option never generated: a clear error listing the classes
    miss = run_eval(
        [*args, "num_desc=3", "describe.offline=true", "logger=none", f"hydra.run.dir={tmp_path / 'miss'}"],
        tmp_path,
        env,
    )
    assert miss.returncode == 2 and "offline:" in miss.stderr and "stop sign" in miss.stderr
    assert_no_secret(tmp_path / "gen", tmp_path / "run", tmp_path / "cache")
    assert SECRET not in gen.stdout + gen.stderr + run.stderr + miss.stderr


def test_other_ranks_read_what_rank_zero_generated(tmp_path, compose_cfg):
    """What the classification task does under DDP: rank 0 generates, the others pass offline=True."""
    with OpenAIStubServer() as server:
        cfg = compose_cfg(llm_args(server))
        classes = ["stop sign", "ladybird", "tennis ball"]
        rank0 = instantiate(cfg.describe, classes=classes, _convert_="all")
        calls = len(server.requests)
        rank1 = instantiate(cfg.describe, classes=classes, _convert_="all", offline=True)
        assert len(server.requests) == calls == 3
    assert rank1.texts == rank0.texts and rank1.meta["num_cached"] == 3


def run_describe(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DESCBENCH_CACHE_DIR": str(cwd / "cache"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "descbench.describe", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_dry_run_prints_the_exact_prompt_without_any_model(tmp_path):
    # a server address where nothing listens: any call would fail the run
    dead = [
        "describe/backend=openai",
        "describe.backend.base_url=http://127.0.0.1:9/v1",
        "describe.backend.max_retries=0",
    ]
    names = tmp_path / "names.txt"
    names.write_text("# my classes\ntench\ngoldfish\n")
    args = ["describe.bank=study", "num_desc=4", "describe.detailed=false", "describe.dry_run=true", *dead]
    run = run_describe([*args, f"describe.classes={names}", f"hydra.run.dir={tmp_path / 'dry'}"], tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    golden = (ROOT / "tests" / "golden" / "llm" / "study_words_nd4_ne2_tench.txt").read_text()
    assert run.stdout.endswith(golden + "\n")
    assert "dry run: the prompt for 'tench' (1 of 2 classes of class list" in run.stdout
    assert not (tmp_path / "cache").exists()
    # the dataset's classes when no list is given (the default shapes world)
    run = run_describe([*args, f"hydra.run.dir={tmp_path / 'dry2'}"], tmp_path)
    assert run.returncode == 0 and "- four-limbed primate\n- wet and hairless nose" in run.stdout
