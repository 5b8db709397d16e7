"""Speed of a 14-configuration description sweep (detailed x num_desc 1..7) on the same images.

Both sides run in this one invocation, on the same JPEG files and model, each in a process of its own and
timed there after its imports:
- naive: the per-job loop of the published scripts (benchmarks/naive_reference.py), 14 times, in the
  caller's environment;
- descbench: ``evaluate(cfg)`` 14 times in one process, as a Hydra multirun does, with a fresh cache, in the
  environment ``python -m descbench.eval`` gives itself (OpenMP's wait policy, read when torch loads: it
  speeds descbench's loader workers up and slows a loop of many small OpenMP regions down, so each side runs
  as its users would run it).
Also: full-loop images/s (descbench's side) vs bare-forward images/s (a baseline), and peak memory against
the number of images.

    python benchmarks/bench_sweep.py            # both models (several minutes on 2 cores)
    python benchmarks/bench_sweep.py --quick    # tiny model only, fewer images
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
import torch  # noqa: E402

from benchmarks.naive_reference import naive_job  # noqa: E402

PHOTO_DESCRIPTORS = ROOT / "descbench" / "datasets" / "photos_descriptors.json"
CONFIGS = [(detailed, n) for detailed in (True, False) for n in range(1, 8)]


def write_image_folder(root: Path, count: int, side: int = 480) -> tuple[list[str], list[int], list[str]]:
    """``count`` JPEGs of the scikit-image photographs (crops/flips at ``side`` px), 12 class folders."""
    from descbench.datasets.photos import _Views, photo_table

    PHOTOS = list(photo_table()["classify"].values())

    views = _Views(max(1, -(-count // len(PHOTOS))))
    paths, labels = [], []
    for index in range(count):
        label, view = index % len(PHOTOS), index // len(PHOTOS)
        image, _ = views[label * views.views + view]
        image = image.resize((side, side * 3 // 4))
        folder = root / f"{label:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{view:05d}.jpg"
        image.save(path, quality=90)
        paths.append(str(path))
    # ImageFolder order: sorted folders, sorted files
    pairs = sorted(zip(paths, [int(Path(p).parent.name) for p in paths]))
    paths, labels = [p for p, _ in pairs], [lab for _, lab in pairs]
    names = root.parent / "class_names.tsv"
    names.write_text("".join(f"{i:02d}\t{c}\n" for i, c in enumerate(PHOTOS)))
    return paths, labels, list(PHOTOS)


def compose_eval(model: str, folder: Path, cache: Path, out: Path, *extra: str):
    """The eval config of one job on the JPEG folder with a random-weight ``model``."""
    from descbench.shell.config import compose_config

    return compose_config(
        [
            "dataset=imagefolder",
            f"dataset.builder.root={folder}",
            "backbone=tiny",
            f"backbone.model={model}",
            "logger=none",
            f"paths.cache_dir={cache}",
            f"paths.output_dir={out}",
            "trainer.enable_progress_bar=false",
            *extra,
        ]
    )


def descbench_sweep(model: str, folder: Path, cache: Path, out: Path) -> tuple[float, list[float]]:
    """The 14 jobs through ``evaluate`` in this process, as a multirun runs them, with a fresh cache."""
    from descbench.core.backbone import _LOADED
    from descbench.eval import RunContext, evaluate

    _LOADED.clear()  # a fresh process would start without the model
    descriptors = PHOTO_DESCRIPTORS
    accs = []
    start = time.perf_counter()
    for k, (detailed, n) in enumerate(CONFIGS):
        cfg = compose_eval(
            model,
            folder,
            cache,
            out / str(k),
            f"dataset.builder.class_names={folder.parent / 'class_names.tsv'}",
            f"dataset.builder.descriptors={descriptors}",
            f"describe.detailed={str(detailed).lower()}",
            f"num_desc={n}",
        )
        metrics, _ = evaluate(cfg, RunContext(run_dir=out / str(k)))
        accs.append(metrics["top1"])
    return time.perf_counter() - start, accs


def folder_listing(folder: Path) -> tuple[list[str], list[int], list[str]]:
    """The paths, labels and class names :func:`write_image_folder` returned for ``folder``."""
    paths = sorted(str(p) for p in folder.glob("*/*.jpg"))
    names = (folder.parent / "class_names.tsv").read_text().splitlines()
    return paths, [int(Path(p).parent.name) for p in paths], [line.split("\t", 1)[1] for line in names]


def naive_sweep(model: str, paths, labels, classes) -> tuple[float, list[float]]:
    notes = json.loads((PHOTO_DESCRIPTORS).read_text())
    accs = []
    start = time.perf_counter()
    for detailed, n in CONFIGS:
        table = notes["sentences" if detailed else "words"]
        accs.append(naive_job(model, paths, labels, classes, table, num_desc=n, as_is=detailed))
    return time.perf_counter() - start, accs


def loop_rate(model: str, folder: Path, cache: Path, out: Path, count: int) -> float:
    """images/s of descbench's full loop (files -> features, cache off)."""
    from descbench.eval import RunContext, evaluate

    cfg = compose_eval(model, folder, cache, out, "describe=classname", "cache.features=false", "task.num_workers=2")
    evaluate(cfg, RunContext(run_dir=out))  # warm-up (text side, allocator)
    start = time.perf_counter()
    evaluate(cfg, RunContext(run_dir=out))
    return count / (time.perf_counter() - start)


def bare_rate(model: str, count: int) -> float:
    """images/s of the bare forward on tensors already in memory."""
    from descbench.core.backbone import load_backbone

    backbone = load_backbone(model, random_init=True, seed=0)
    images = torch.randn(count, 3, backbone.image_size, backbone.image_size)
    with torch.inference_mode():
        backbone.encode_images(images[:64])
        start = time.perf_counter()
        for i in range(0, count, 64):
            backbone.encode_images(images[i : i + 64])
        return count / (time.perf_counter() - start)


#: what each side of a comparison runs, in a process of its own: descbench's sides under the environment
#: ``python -m descbench.eval`` gives itself (its OpenMP wait policy), the baselines under the caller's
SIDES = {
    "naive": (lambda model, folder: naive_sweep(model, *folder_listing(Path(folder))), False),
    "descbench": (lambda model, folder, cache, out: descbench_sweep(model, Path(folder), Path(cache), Path(out)), True),
    "loop": (
        lambda model, folder, cache, out, count: loop_rate(model, Path(folder), Path(cache), Path(out), count),
        True,
    ),
    "bare": (bare_rate, False),
}
RESULT = "side result: "


def run_side(name: str, *args) -> object:
    """``SIDES[name](*args)`` in a fresh process (the OpenMP wait policy is read once, when torch loads)."""
    from descbench.eval import OMP_WAIT_POLICY

    env = dict(os.environ)
    if SIDES[name][1]:
        env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    proc = subprocess.run(
        [sys.executable, __file__, "--side", name, json.dumps(args)], env=env, capture_output=True, text=True
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        sys.exit(f"benchmark side {name} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT) :])


def peak_memory_mb(count: int, work: Path) -> float:
    """Peak RSS of a separate process that only evaluates ``count`` images (tiny model, cache off, no workers)."""
    write_image_folder(work / "imgs", count)
    code = (
        "import resource, sys; sys.path.insert(0, %r)\n"
        "from pathlib import Path\n"
        "from descbench.shell.config import compose_config\n"
        "from descbench.eval import RunContext, evaluate\n"
        "w = Path(%r)\n"
        "cfg = compose_config(['dataset=imagefolder', f'dataset.builder.root={w}/imgs', 'backbone=tiny',"
        " 'describe=classname', 'logger=none', f'paths.cache_dir={w}/c', f'paths.output_dir={w}/o',"
        " 'cache.features=false', 'trainer.enable_progress_bar=false', 'task.num_workers=0'])\n"
        "evaluate(cfg, RunContext(run_dir=w / 'o'))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    ) % (str(ROOT), str(work))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_case(model: str, count: int, work: Path) -> float:
    folder = work / model / "images"
    write_image_folder(folder, count)
    naive_s, naive_acc = run_side("naive", model, str(folder))
    ours_s, ours_acc = run_side(
        "descbench", model, str(folder), str(work / model / "cache"), str(work / model / "runs")
    )
    assert all(abs(a - b) < 1e-6 for a, b in zip(naive_acc, ours_acc)), (naive_acc, ours_acc)
    ratio = naive_s / ours_s
    print(
        f"[{model}, {count} images, 14 configs] naive {naive_s:.1f} s, descbench {ours_s:.1f} s "
        f"(same top-1 in all 14 jobs)"
    )
    print(f"sweep speed-up: {ratio:.2f}x ({model}, {count} images, naive / descbench)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny model only, 200 images")
    parser.add_argument("--tiny-images", type=int, default=3000)
    parser.add_argument("--vit-images", type=int, default=200)
    parser.add_argument("--side", choices=list(SIDES), help=argparse.SUPPRESS)  # one side, in its own process
    parser.add_argument("side_args", nargs="?", default="[]", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.side:
        print(RESULT + json.dumps(SIDES[args.side][0](*json.loads(args.side_args))), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_case("descbench-tiny", 200 if args.quick else args.tiny_images, work)
        if not args.quick:
            run_case("ViT-B-32", args.vit_images, work)
            images = str(work / "ViT-B-32" / "images")
            loop = run_side("loop", "ViT-B-32", images, str(work / "enc-cache"), str(work / "enc"), args.vit_images)
            bare = run_side("bare", "ViT-B-32", args.vit_images)
            print(f"[ViT-B-32] full loop {loop:.1f} images/s, bare forward {bare:.1f} images/s")
            print(f"encoding ratio: {loop / bare:.2f} (full loop / bare forward, ViT-B-32)")
            small, large = peak_memory_mb(300, work / "m1"), peak_memory_mb(3000, work / "m2")
            print(
                f"peak RSS of an evaluation: 300 images {small:.0f} MB, 3000 images {large:.0f} MB "
                f"(features + per-sample predictions of 2700 more images: {2700 * (64 * 4 + 11 * 8) / 2**20:.2f} MB)"
            )


if __name__ == "__main__":
    main()
