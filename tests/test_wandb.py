"""W&B: one offline run per multirun job, holding the metrics and config, never a planted key."""

import json
import os

from tests.wandb_records import summarize_run

KEY = "sk-plantedsecret0123456789abcdef"


def test_multirun_jobs_each_get_an_offline_run_without_secrets(tmp_path):
    sweep = tmp_path / "mysweep"
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    env.update(OPENAI_API_KEY=KEY, HOME=str(tmp_path / "home"))
    import subprocess
    import sys

    from tests.conftest import ROOT

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "descbench.eval",
            "-m",
            "experiment=photos",
            "dataset.builder.views=1",
            "logger=wandb",
            "num_desc=1,2",
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "DESCBENCH_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    for job, num_desc in (("0", 1), ("1", 2)):
        runs = list((sweep / job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1, job
        run = summarize_run(runs[0])
        results = json.loads((sweep / job / "results.json").read_text())
        assert run["run"] == {
            "group": "mysweep",
            "job_type": "classify",
            "name": f"dataset.builder.views=1,logger=wandb,num_desc={num_desc}",
        }
        assert run["config"]["num_desc"] == num_desc and run["config"]["describe"]["num_desc"] == num_desc
        for metric in ("top1", "top5", "entropy", "ece", "mean_per_class_acc"):
            assert run["summary"][metric] == results[metric]
        assert run["summary"]["per_class_acc.nrows"] == 12
    leaks = [p for p in tmp_path.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == [] and KEY not in proc.stdout + proc.stderr
