# `make run`: serve on http://127.0.0.1:8080 (embedded mode, no Redis needed).
# `make test`: the whole test suite. Both install what is missing first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint bench system-deps

run: $(VENV)/.runtime web/node_modules/.installed
	$(PY) -m chatserver $(ARGS)

test: $(VENV)/.test web/node_modules/.installed system-deps
	$(PY) -m ruff check chatserver tests bench docs/examples
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

# `make bench`: our server and the Node reference (bench/reference) side by side, see bench/README.md;
# ARGS="--only throughput --redis ..." passes options. The cluster scenario and --redis need redis-server.
bench: $(VENV)/.test
	$(PY) -m bench $(ARGS)

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.test: requirements-test.txt requirements.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	touch $@

# Browser tests drive Debian's chromium; cluster tests start their own redis-server and nginx.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
