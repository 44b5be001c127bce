# make demo: triage the shipped example calls with the shipped model.
# make test: the test suite. Both create .venv and install on first use.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml scripts/setup.sh scripts/setup-system.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/urgence triage examples/*.wav

test: $(STAMP)
	$(VENV)/bin/ruff check urgence tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check urgence tests benchmarks

# Benchmarks print ratios against references measured in the same run (see benchmarks/README.md).
bench: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/engine_vs_torch.py
	$(PY) benchmarks/realtime.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
