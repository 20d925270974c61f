# Offload's own tasks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
# Integration tests find pytest (and friends) through PATH.
export PATH := $(VENV)/bin:$(PATH)

# The Docker tests' private engine: `make setup` starts it, `make test` stops it at the end.
DOCKER_ENGINE := $(CURDIR)/examples/docker/private-engine.sh

.PHONY: build test test-offload setup setup-python setup-ssh setup-chromium setup-docker stop-docker lint

# apt-get waits up to 2 minutes for the dpkg lock that another apt (an
# unattended upgrade, a second `make setup`) holds, instead of failing at once.
# `apt-get update` takes the package lists' lock, which that option does not
# cover: APT_UPDATE retries it, for up to 2 minutes, while that lock is taken.
# Both expect SUDO to be set in the recipe (empty for root, else sudo).
APT_GET := env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120
APT_UPDATE = for try in 1 2 3 4 5 6 7 8 9 10 11 12; do \
		if out=$$($$SUDO $(APT_GET) update -qq 2>&1); then break; fi; \
		case "$$out" in *"Could not get lock"*) if [ $$try -lt 12 ]; then \
			echo "apt-get update: another apt holds the package lists' lock; waiting"; sleep 10; continue; fi;; esac; \
		printf '%s\n' "$$out" >&2; exit 1; \
	done

build:
	cargo build --release

## Everything the tests need: pytest in a local virtualenv, an OpenSSH server,
## headless Chromium (the timeline test renders timeline.html and screenshots it),
## a private Docker engine with the images of the Docker tests.
setup: setup-python setup-ssh setup-chromium setup-docker

setup-python: $(VENV)/.ready

$(VENV)/.ready: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'pytest>=8,<9' 'pytest-xdist>=3,<4'
	touch $@

setup-ssh:
	@if ! command -v /usr/sbin/sshd >/dev/null 2>&1 || ! command -v scp >/dev/null 2>&1; then \
		echo "installing openssh-server and openssh-client (needed by the ssh sandbox tests)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$(APT_UPDATE); $$SUDO $(APT_GET) install -y -qq openssh-server openssh-client >/dev/null; \
	fi

setup-chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing chromium (needed by the timeline screenshot test)"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$(APT_UPDATE); $$SUDO $(APT_GET) install -y -qq chromium >/dev/null; \
	fi

## A private Docker engine (root only; examples/docker/private-engine.sh says how it
## runs) and the busybox image the Docker tests run in; OFFLOAD_DOCKER_PYTEST=1 also
## builds the Debian + pytest image (1-2 minutes once, then kept in target/docker-engine).
## Without root it prints why it skips, and the Docker tests skip (fail when CI=true).
setup-docker:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ ! command -v dockerd >/dev/null 2>&1 || ! command -v busybox >/dev/null 2>&1 || ldd "$$(command -v busybox)" >/dev/null 2>&1 || \
		  { [ "$${OFFLOAD_DOCKER_PYTEST:-0}" = 1 ] && ! command -v debootstrap >/dev/null 2>&1; }; }; then \
		echo "installing docker.io, busybox-static and debootstrap (needed by the Docker tests)"; \
		SUDO=; $(APT_UPDATE); $(APT_GET) install -y -qq docker.io busybox-static debootstrap >/dev/null; \
	fi
	$(DOCKER_ENGINE) start

## Stop the private Docker engine by its PID (leftover containers are removed first).
stop-docker:
	$(DOCKER_ENGINE) stop

## Unit tests, integration tests (the real binary on fixtures/), lints. The Docker
## engine is stopped at the end, however the tests end.
test: setup
	@trap '$(DOCKER_ENGINE) stop' EXIT; trap 'exit 130' INT TERM; set -ex; \
	cargo build; \
	cargo test --all-targets; \
	cargo fmt --check; \
	cargo clippy --all-targets -- -D warnings

## Offload running its own test suite (offload.toml, cargo framework).
test-offload: setup build
	@trap '$(DOCKER_ENGINE) stop' EXIT; trap 'exit 130' INT TERM; set -x; \
	./target/release/offload run

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
