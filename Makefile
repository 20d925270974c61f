# Offload's own tasks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
# Integration tests find pytest (and friends) through PATH.
export PATH := $(VENV)/bin:$(PATH)

.PHONY: build test test-offload setup setup-python setup-ssh setup-chromium lint

build:
	cargo build --release

## Everything the tests need: pytest in a local virtualenv, an OpenSSH server,
## headless Chromium (the timeline test renders timeline.html and screenshots it).
setup: setup-python setup-ssh setup-chromium

setup-python: $(VENV)/.ready

$(VENV)/.ready: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'pytest>=8,<9' 'pytest-xdist>=3,<4'
	touch $@

setup-ssh:
	@if ! command -v /usr/sbin/sshd >/dev/null 2>&1 || ! command -v scp >/dev/null 2>&1; then \
		echo "installing openssh-server and openssh-client (needed by the ssh sandbox tests)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client >/dev/null; \
	fi

setup-chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium (needed by the timeline screenshot test)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

## Unit tests, integration tests (the real binary on fixtures/), lints.
test: setup
	cargo build
	cargo test --all-targets
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

## Offload running its own test suite (offload.toml, cargo framework).
test-offload: setup build
	./target/release/offload run

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
