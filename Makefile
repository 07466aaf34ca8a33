# Two commands on a fresh machine with only Python: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint schemas bench clean prometheus

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lapor-hub dev

# Prometheus and promtool come from Debian's package: installed where we may (root with
# apt), otherwise the Prometheus tests skip and say how to enable them.
prometheus:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing prometheus (Debian package) for the Prometheus tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus >/dev/null) || echo "prometheus install failed"; \
	  else echo "promtool not found: Prometheus tests will skip (as root: apt-get install prometheus)"; fi; }

# Test files run in three processes: most of the time is spent waiting on the broker
# (consumer-group joins), not on the CPU. Each process starts its own embedded broker.
test: $(STAMP) prometheus
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check hub tests bench
	$(BIN)/mypy --explicit-package-bases hub tests bench

bench: $(STAMP)
	$(BIN)/lapor-hub bench

schemas: $(STAMP)
	$(BIN)/lapor-hub schemas

clean:
	rm -rf $(VENV) var
