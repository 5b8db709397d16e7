"""Generation throughput of the local backend (SmolLM2-135M GGUF) on this machine, and a fully cached rerun.

python benchmarks/bench_llm.py [--classes N] [--max-new-tokens T]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from descbench.descriptions.llm import LocalBackend, generate_descriptions

CLASSES = ["tiger", "coffee mug", "stop sign", "goldfish", "pineapple", "fire truck", "violin", "sea turtle"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--num-desc", type=int, default=4)
    parser.add_argument("--detailed", action="store_true")
    args = parser.parse_args()
    classes = CLASSES[: args.classes]
    opts = dict(num_desc=args.num_desc, detailed=args.detailed, instruction="none", num_examples=3, progress=False)
    backend = LocalBackend(max_new_tokens=args.max_new_tokens)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        backend._load()  # model load timed apart from generation
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds = generate_descriptions(classes, backend=backend, cache_dir=cache, **opts)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        generate_descriptions(classes, backend=backend, cache_dir=cache, **opts)
        cached_s = time.perf_counter() - t0
    print(f"model load: {load_s:.1f} s")
    for c, d in zip(ds.classes, ds.descriptors):
        print(f"  {c}: {d}")
    print(f"fully cached rerun: {cached_s * 1000:.1f} ms for {len(classes)} classes")
    print(f"local backend throughput: {len(classes) / gen_s * 60:.1f} classes/min ({gen_s / len(classes):.1f} s/class)")


if __name__ == "__main__":
    main()
