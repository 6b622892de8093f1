# Relight developer tasks. `make test` works on a fresh Debian machine from a clean clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint format bench lock clean dovecot

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The connector tests run a private Dovecot; install the binaries when they are missing.
dovecot:
	@command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot || { \
		echo "Installing dovecot-imapd (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd; }

# A sample team mailbox in a temporary Maildir, one cycle, the report and the drafts.
demo: $(STAMP)
	$(BIN)/relight demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) dovecot lint
	$(BIN)/pytest

bench: $(STAMP) dovecot
	$(BIN)/python -m bench.sync_bench --messages 10000
	$(BIN)/python -m bench.sync_bench --messages 50000

lock:
	rm -rf /tmp/relight-lock && $(PYTHON) -m venv /tmp/relight-lock
	/tmp/relight-lock/bin/pip install --quiet -e '.[dev]'
	{ echo "# Exact versions \`make\` installs (pip -c). Refresh with \`make lock\` after changing pyproject.toml."; \
	  /tmp/relight-lock/bin/pip freeze --exclude-editable | grep -v '^#'; } > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
