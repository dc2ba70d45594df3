PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# root (CI, containers) needs no sudo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: app test install install-test browser

## make app: install and start the dashboard on the bundled model
app: install
	$(BIN)/python -m streamlit run app.py

## make test: install everything (browser included) and run the whole test suite
test: install-test
	$(BIN)/python -m pytest

$(BIN)/python:
	$(PY) -m venv $(VENV)

install: $(BIN)/python
	$(BIN)/pip install -e .

install-test: $(BIN)/python browser
	$(BIN)/pip install -e ".[test]"

# The browser test drives a real Chromium: Debian/Ubuntu package if apt-get exists,
# otherwise Playwright's own build (downloaded by `playwright install`).
browser:
	@if [ -x /usr/bin/chromium ] || [ -x /usr/bin/chromium-browser ]; then echo "chromium: found"; \
	elif command -v apt-get >/dev/null 2>&1; then $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else $(BIN)/pip install -q playwright && $(BIN)/python -m playwright install chromium; fi
