"""What one job of a description sweep costs once the image features are cached, at ImageNet scale.

Two procedurally drawn sets of 1,000 classes (benchmarks/scale_set.py): 3 images per class (N = 3,000) and 50
per class (N = 50,000). For each set:

1. priming: ``python -m descbench.eval -m describe.detailed=true,false num_desc=7`` encodes every image once
   with descbench-tiny (random weights) into the image-feature cache, and every description string into the
   text cache: what the first job of a sweep pays once;
2. the sweep: ``python -m descbench.eval -m describe.detailed=true,false num_desc=1,...,7`` (14 jobs, one
   process, as a user runs it). Per-job seconds = the time between the first and the last job's
   ``results.json`` (written last by a job) over 13: the whole path of a job after the cache hit (composing
   its config, data set listing and file fingerprint, cache read, text side, ``Trainer.test``, metrics,
   intervals, outputs), without the process start.

At N = 50,000 also: one job in this process with each phase timed, and the bare head: the same job's cached
features scored by its description head with the metrics' arithmetic written out in torch (no Lightning, no
Hydra, no files), the floor a job cannot go below. Last, the start-up of a one-job process: its wall time
minus the job's own time.

    python benchmarks/bench_scale.py                 # both sets in a temporary dir (15-20 minutes on 2 cores,
                                                     # most of it drawing and encoding 50,000 images once)
    python benchmarks/bench_scale.py --work DIR      # keep the sets and caches in DIR (a rerun skips priming)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

from benchmarks.scale_set import write_scale_set  # noqa: E402

CLASSES = 1000
SIZES = {3000: 3, 50000: 50}  # N -> images per class


def job_overrides(folder: Path, names: Path, notes: Path, cache: Path) -> list[str]:
    return [
        "dataset=imagefolder",
        f"dataset.builder.root={folder}",
        f"dataset.builder.class_names={names}",
        f"dataset.builder.descriptors={notes}",
        "backbone=tiny",
        "logger=none",
        f"paths.cache_dir={cache}",
        "trainer.enable_progress_bar=false",
    ]


def run_eval(args: list[str], env: dict[str, str] | None = None) -> float:
    """``python -m descbench.eval <args>`` in a fresh process; its wall seconds (fails loudly)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "descbench.eval", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"descbench.eval failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds


def sweep_per_job(base: list[str], sweep_dir: Path) -> tuple[float, int]:
    """Per-job seconds of a 14-job multirun (between the first and the last job's results.json) and its jobs."""
    run_eval(["-m", *base, "describe.detailed=true,false", "num_desc=1,2,3,4,5,6,7", f"hydra.sweep.dir={sweep_dir}"])
    stamps = sorted(p.stat().st_mtime for p in sweep_dir.glob("*/results.json"))
    if len(stamps) != 14:
        sys.exit(f"expected 14 results.json under {sweep_dir}, found {len(stamps)}")
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1), len(stamps)


class Phases:
    """Wall seconds per phase of one in-process job, by wrapping the functions that make each phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, phase: str, subtract: tuple[str, ...] = ()) -> None:
        """Time ``owner.name`` as ``phase``, less the phases in ``subtract`` that run inside it."""
        original = getattr(owner, name)
        seconds = self.seconds

        def timed(*args, **kwargs):
            before = sum(seconds[k] for k in subtract)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                inner = sum(seconds[k] for k in subtract) - before
                seconds[phase] += time.perf_counter() - start - inner

        self._undo.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def one_job_phases(base: list[str], run_dir: Path) -> tuple[dict[str, float], float, object]:
    """One job (detailed, num_desc=4) in this process after a warm-up job; its phases, total and module."""
    import lightning as L

    import descbench.eval as ev
    import descbench.tasks.classify.outputs as outputs
    import descbench.tasks.runner as runner
    from descbench.shell.config import compose_config
    from descbench.tasks.classify.module import ClassificationTask
    from descbench.tasks.classify.spec import ClassifyTask, ImageFeatures

    overrides = [*base, "describe.detailed=true", "num_desc=4", f"paths.output_dir={run_dir}"]
    ev.evaluate(compose_config(overrides), ev.RunContext(run_dir=run_dir))  # warm-up: model loaded, code paths run
    phases = Phases()
    # "loop" is Trainer.test without what the module's start and end hooks do (text side, metrics)
    phases.wrap(L.Trainer, "test", "loop", subtract=("heads", "metrics"))
    phases.wrap(ClassificationTask, "on_test_start", "heads")
    phases.wrap(ClassificationTask, "on_test_epoch_end", "metrics")
    phases.wrap(runner, "build_text_side", "text side")
    phases.wrap(ClassifyTask, "prepare", "data set + fingerprint")
    phases.wrap(ImageFeatures, "lookup", "cache read")
    phases.wrap(outputs, "interval_fields", "intervals")
    phases.wrap(outputs, "mean_fields", "intervals")
    phases.wrap(outputs, "write_classification_outputs", "outputs", subtract=("intervals",))
    phases.wrap(ev, "build_logger", "logger")
    objects: dict = {}
    try:
        start = time.perf_counter()
        cfg = compose_config(overrides)
        phases.seconds["compose"] += time.perf_counter() - start
        _, objects = ev.evaluate(cfg, ev.RunContext(run_dir=run_dir))
        total = time.perf_counter() - start
    finally:
        phases.restore()
    found = dict(phases.seconds)
    found["text side"] = found.get("text side", 0.0) + found.pop("heads", 0.0)  # descriptions + their embeddings
    return found, total, objects["module"]


def bare_head_seconds(cache: Path, module) -> tuple[float, float]:
    """The job's cached features through its description head and the metrics' arithmetic, nothing else; and
    the seconds of the 95 % intervals the job records on top of it (Wilson for top-1 and top-5, the seeded
    bootstrap of the mean entropy: ``descbench.core.stats``, the numbers the job writes)."""
    import torch
    from safetensors.torch import load_file

    from descbench.core.metrics import entropy_nats, scale_scores
    from descbench.core.stats import bootstrap_interval, wilson_interval

    (path,) = (cache / "image_features").glob("*.safetensors")
    data = load_file(str(path))
    features, labels = data["features"], data["labels"]
    head, classes = module.heads[0], module.num_classes
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with torch.inference_mode():
            correct = top5 = 0
            support = torch.zeros(classes, dtype=torch.long)
            right = torch.zeros(classes, dtype=torch.long)
            confidences, hits, entropies = [], [], []
            for first in range(0, len(labels), 4096):
                x, y = features[first : first + 4096], labels[first : first + 4096]
                scores = head(x)
                logits = scale_scores(scores, module.entropy_scale, module.backbone.logit_scale)
                probs = logits.float().softmax(dim=1)
                entropies.append(entropy_nats(logits))
                top = scores.topk(5, dim=1).indices
                hit = top[:, 0] == y
                correct += int(hit.sum())
                top5 += int((top == y[:, None]).any(dim=1).sum())
                support += torch.bincount(y, minlength=classes)
                right += torch.bincount(y[hit], minlength=classes)
                confidences.append(probs.max(dim=1).values)
                hits.append(hit)
            confidence, hit = torch.cat(confidences), torch.cat(hits).float()
            bins = torch.bucketize(confidence, torch.linspace(0, 1, 16)[1:-1])
            count = torch.bincount(bins, minlength=15).clamp_min(1)
            ece = ((torch.bincount(bins, hit, 15) - torch.bincount(bins, confidence, 15)).abs()).sum() / len(hit)
            _ = (correct / len(labels), top5 / len(labels), (right / support.clamp_min(1)).mean(), ece, count)
            _ = torch.cat(entropies).mean()
        best = min(best, time.perf_counter() - start)
    entropy = torch.cat(entropies).numpy()
    start = time.perf_counter()
    wilson_interval(correct, len(labels)), wilson_interval(top5, len(labels)), bootstrap_interval(entropy)
    return best, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="keep sets, caches and runs here (default: a temporary dir)")
    parser.add_argument("--repeats", type=int, default=2, help="sweeps per set; the fastest is reported")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), choices=list(SIZES), help="sets to run")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        per_job: dict[int, float] = {}
        for n in args.sizes:
            per_class = SIZES[n]
            start = time.perf_counter()
            folder, names, notes = write_scale_set(work / f"set{n}", CLASSES, per_class)
            cache = work / f"cache{n}"
            base = job_overrides(folder, names, notes, cache)
            made = time.perf_counter() - start
            primed = 0.0
            if not (cache / "image_features").is_dir():
                primed = run_eval(
                    ["-m", *base, "describe.detailed=true,false", "num_desc=7", f"hydra.sweep.dir={work / f'prime{n}'}"]
                )
            print(f"[N={n}] set made in {made:.1f} s; image and text features primed in {primed:.1f} s")
            times = []
            for _ in range(args.repeats):
                seconds, jobs = sweep_per_job(base, work / f"sweep{n}-{time.time_ns()}")
                times.append(seconds)
            print(f"[N={n}] {jobs}-job sweep, per job (after the first): " + ", ".join(f"{t:.3f}" for t in times))
            per_job[n] = min(times)
            print(f"per-job seconds at N={n}: {per_job[n]:.3f}")
        n = max(args.sizes)
        folder, names, notes = write_scale_set(work / f"set{n}", CLASSES, SIZES[n])
        base = job_overrides(folder, names, notes, work / f"cache{n}")
        phases, total, module = one_job_phases(base, work / "phases")
        order = ["compose", "logger", "data set + fingerprint", "cache read", "text side", "loop", "metrics"]
        order += ["intervals", "outputs"]
        shown = ", ".join(f"{k} {phases.get(k, 0.0):.3f}" for k in order)
        rest = total - sum(phases.get(k, 0.0) for k in order)
        print(f"[N={n}] one job in this process: {total:.3f} s = {shown}, other {rest:.3f}")
        from descbench.core.stats import BOOTSTRAP_RESAMPLES

        head, intervals = bare_head_seconds(work / f"cache{n}", module)
        print(f"bare head seconds at N={n}: {head:.3f}")
        print(
            f"[N={n}] the job's intervals alone (Wilson x2, entropy bootstrap of {n} x {BOOTSTRAP_RESAMPLES:,} draws): {intervals:.3f} s"
        )
        goal = per_job[n] <= 1.5 or per_job[n] <= 2 * head + 0.3
        print(f"[N={n}] per job {per_job[n]:.3f} s vs bare head {head:.3f} s: {'within' if goal else 'OVER'} the goal")
        print(
            f"[N={n}] per job less its intervals {per_job[n] - intervals:.3f} s vs 2 x bare head + 0.3 = "
            f"{2 * head + 0.3:.3f} s"
        )
        single = run_eval([*base, "describe.detailed=true", "num_desc=4", f"hydra.run.dir={work / 'single'}"])
        print(f"start-up seconds (one-job process wall {single:.2f} s minus one job): {single - per_job[n]:.2f}")


if __name__ == "__main__":
    main()
