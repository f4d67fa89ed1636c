# Two commands work on a fresh machine: `make demo` and `make test` (each creates .venv first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: check-report install demo test test-all bench bench-ingest bench-sql bench-engine bench-lengths bench-validate bench-engine-throughput bench-noisy-cot bench-contamination bench-unlearning bench-junk bench-index bench-scale lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/curation demo

# the demo's latest run as an HTML report, rendered in headless Chromium (Debian package chromium)
check-report: $(STAMP)
	$(BIN)/curation report --store curation-demo-store --out curation-demo-store/report.html
	$(BIN)/python -m curation.report_check curation-demo-store/report.html --screenshot curation-demo-store/report.png

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ''

bench: bench-ingest bench-sql bench-engine bench-engine-throughput bench-lengths bench-validate bench-noisy-cot bench-contamination bench-unlearning bench-junk bench-index bench-scale

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest_throughput.py

bench-sql: $(STAMP)
	$(BIN)/python bench/sql_scores.py

# LDS on concrete, digits, wine, friedman1 and a small GPT-2 (an estimated 15-17 minutes); throughput apart (about 21)
bench-engine: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/lds.py

bench-engine-throughput: $(STAMP)
	$(BIN)/python bench/engine_throughput.py

# issue 15: per-batch padding vs padding to max_length on a long-tailed corpus; validation of a 2,000-sample task in 10 minutes
bench-lengths: $(STAMP)
	$(BIN)/python bench/lengths.py

bench-validate: $(STAMP)
	$(BIN)/python bench/validate_budget.py

bench-noisy-cot: $(STAMP)
	$(BIN)/python bench/noisy_cot.py

# text methods and lm-eval's janitor, then the model arms (membership, influence); see bench/README.md
bench-contamination: $(STAMP)
	$(BIN)/python bench/contamination.py
	$(BIN)/python bench/contamination_model.py

# corrective unlearning: digits MLP (poisoning, interclass confusion), expansion + every method vs retraining,
# then the language model (forget 10% of fictitious people); both write bench/results/unlearning.json
bench-unlearning: $(STAMP)
	$(BIN)/python bench/unlearning.py
	$(BIN)/python bench/unlearning_lm.py

# junk and low-value data (issue 14): the brain-rot dose-response, detection and filter recovery; pruning by value
bench-junk: $(STAMP)
	$(BIN)/python bench/junk_dose.py
	$(BIN)/python bench/junk_pruning.py

# facts recall per strategy (bergson's test) and the gradient index vs full EK-FAC scoring (issue 15)
bench-index: $(STAMP)
	$(BIN)/python bench/index.py

# issue 16: scoring local vs Ray (1 and 2 workers), a killed worker, 10M-row ingest, a 1B-row scores table
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py

lint: $(STAMP)
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) curation-demo-store bench/work .pytest_cache
