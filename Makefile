# courrier — the two set-up commands are `make run` and `make test` (see README.md).

PYTHON ?= python3
VENV ?= .venv
DATA ?= data
BIN := $(VENV)/bin
PORT_OFFSET ?=

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## run: install, set up on first use (quickstart), then serve on the embedded store.
run: $(VENV)/.installed
	@test -f $(DATA)/courrier.toml || $(BIN)/courrier quickstart --data $(DATA) $(if $(PORT_OFFSET),--port-offset $(PORT_OFFSET))
	$(BIN)/courrier serve --data $(DATA) $(if $(PORT_OFFSET),--port-offset $(PORT_OFFSET))

## test: the whole suite, with the linters.
test: $(VENV)/.test-installed lint
	$(BIN)/pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

## bench: benchmarks, printed (add --record to append them to bench/RESULTS.md); the SMTP one
## compares with a private Postfix instance (apt-get install postfix), the IMAP and POP3 ones with
## Dovecot (apt-get install dovecot-imapd dovecot-pop3d); those three need root.
bench: $(VENV)/.test-installed
	$(BIN)/python -m bench.store_append
	$(BIN)/python -m bench.smtp_accept
	$(BIN)/python -m bench.relay_bench
	$(BIN)/python -m bench.dkim_bench
	$(BIN)/python -m bench.imap_bench
	$(BIN)/python -m bench.pop3_bench
	$(BIN)/python -m bench.dns_qps

clean:
	rm -rf $(VENV) build *.egg-info
