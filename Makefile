# speech-qa: two commands set everything up on a fresh machine.
#   make run   install, build the default index, serve the web page
#   make test  install, run the whole test suite
PYTHON ?= python3
# PyTorch's CPU-only wheel index: a plain 'torch==X' from PyPI is the CUDA build on Linux
# (several GB of nvidia packages). Unreachable (a closed network): pip's configured index.
TORCH_VERSION   ?= 2.13.0
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
HOST   ?= 127.0.0.1
PORT   ?= 7860
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install run index test lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# The CPU build of torch first: a plain 'torch' requirement would pull a multi-GB CUDA build.
	$(PIP) install --quiet --retries 1 --timeout 15 --index-url $(TORCH_CPU_INDEX) "torch==$(TORCH_VERSION)" \
	  || { echo "speech-qa: PyTorch's CPU index is out of reach; using pip's configured index"; \
	       $(PIP) install --quiet "torch==$(TORCH_VERSION)"; }
	@$(PY) -c "import torch; torch.version.cuda and print('speech-qa: note: torch is a CUDA build (it runs on the CPU, but is several GB); see README, Set-up')"
	$(PIP) install --quiet -e ".[test,cluster]"
	touch $@

install: $(VENV)/.installed

index: install
	$(VENV)/bin/speech-qa ask "When did Dalian receive the Global 500 award?" --top-k 1

run: index
	$(VENV)/bin/speech-qa serve --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check ingest index qa ui tests bench
	$(PY) -m mypy

bench: install
	$(PY) bench/quality.py
	$(PY) bench/perf.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
