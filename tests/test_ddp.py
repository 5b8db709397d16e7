"""A 2-process CPU DDP run equals a 1-process run, on a set whose size is not divisible by 2 x batch."""

import json

import pytest

from tests.conftest import MULTI_PROCESS, run_ddp_eval, run_eval

COMMON = ["experiment=photos", "logger=none", "dataset.limit=37", "task.batch_size=4"]


@MULTI_PROCESS
@pytest.mark.slow
def test_two_process_ddp_equals_one_process(tmp_path):
    runs = {}
    for name, extra in {"one": [], "two": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]}.items():
        # own cache per run (the 2-process run must encode, not read the 1-process features); one thread per
        # process in both runs, since a different thread count changes float sums in the last bits
        env = {"DESCBENCH_CACHE_DIR": str(tmp_path / f"cache-{name}"), "OMP_NUM_THREADS": "1"}
        proc = run_ddp_eval([*COMMON, *extra], cwd=tmp_path, run_dir=tmp_path / name, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert len(list((tmp_path / name).rglob("results.json"))) == 1
        runs[name] = (
            json.loads((tmp_path / name / "results.json").read_text()),
            (tmp_path / name / "predictions.csv").read_text(),
        )
    one, two = runs["one"][0], runs["two"][0]
    assert one["num_samples"] == two["num_samples"] == 37
    for key in ("top1", "top5", "mean_per_class_acc", "per_class_acc", "top1.ci_low", "top1.ci_high"):
        assert one[key] == two[key], key
    # the ranks encode other batch compositions, which moves a confidence or an entropy in its last float32
    # bits (the metric states themselves are order-free: ECE sums integers); never more than that
    assert two["ece"] == pytest.approx(one["ece"], abs=1e-6)
    assert two["entropy"] == pytest.approx(one["entropy"], abs=1e-6)
    assert runs["one"][1] == runs["two"][1]  # every per-sample prediction, in dataset order


@MULTI_PROCESS
@pytest.mark.slow
def test_a_one_sample_set_on_two_processes_equals_one_process(tmp_path):
    """Rank 1's share is empty: it steps over a ghost batch, joins every sync, and nothing counts twice."""
    runs = {}
    for name, extra in {"one": [], "two": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]}.items():
        env = {"DESCBENCH_CACHE_DIR": str(tmp_path / f"cache-{name}"), "OMP_NUM_THREADS": "1"}
        proc = run_ddp_eval(["logger=none", "dataset.limit=1", *extra], cwd=tmp_path, run_dir=tmp_path / name, env=env)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
        rows = (tmp_path / name / "predictions.csv").read_text().splitlines()
        assert len(rows) == 2  # the header and the one sample, never a ghost row
    one, two = runs["one"], runs["two"]
    assert one["num_samples"] == two["num_samples"] == one["num_evaluated"] == two["num_evaluated"] == 1
    for key in ("top1", "top5", "per_class_acc", "top1.ci_low", "top1.ci_high"):
        assert one[key] == two[key], key


def test_multirun_with_ddp_is_refused_with_a_message(tmp_path):
    proc = run_eval(
        [
            "-m",
            *COMMON,
            "num_desc=1,2",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            f"hydra.sweep.dir={tmp_path / 's'}",
        ],
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        "cannot run inside a Hydra multirun (-m): Lightning would re-launch the whole sweep in every rank"
        in proc.stderr
    )
    assert "submitit" in proc.stderr


def test_submitit_launcher_config_composes_without_a_cluster():
    from descbench.shell.config import compose_config

    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.partition) == (1, 1, "gpu")


def test_shares_are_disjoint_unpadded_and_an_empty_one_is_a_ghost():
    from descbench.tasks.datamodule import GHOST, ShareSampler, skipping_ghosts

    assert [list(ShareSampler(5, r, 2)) for r in (0, 1)] == [[0, 2, 4], [1, 3]]
    assert [list(ShareSampler(1, r, 2)) for r in (0, 1)] == [[0], [GHOST]]
    assert [len(ShareSampler(1, r, 3)) for r in (0, 1, 2)] == [1, 1, 1]
    seen = []
    step = skipping_ghosts(lambda batch, i: seen.append(batch))
    step(GHOST, 0), step([7], 1)
    assert seen == [[7]]
