# Conclave: the commands a new user runs on a fresh Debian machine.
#   make demo   the main job (see README.md)
#   make test   installs what is missing, then runs every check and test
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := softhsm2 opensc zbar-tools tmux strace dosfstools mtools
PY_PACKAGES := tuf==7.0.1 securesystemslib[crypto]==1.3.1

.PHONY: demo test deps deb-deps venv lint unit build bench clean

build:
	$(CARGO) build --release --locked

demo: build
	./target/release/conclave verify --trusted-root tests/data/demo-repo/metadata/1.root.json \
	  --repo tests/data/demo-repo/metadata --at 2026-11-23T00:00:00Z

deps: deb-deps venv

# Debian packages the tests use (SoftHSM2, zbar, tmux, strace). Installs only what is missing.
deb-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Python virtualenv with the reference client (python-tuf) for the interoperability tests.
venv: $(VENV)/.done
$(VENV)/.done: Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(PY_PACKAGES)
	touch $@

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

unit:
	CONCLAVE_PYTHON=$(abspath $(PY)) $(CARGO) test --locked

test: deps lint unit

clean:
	rm -rf target $(VENV)

# QR transport figures: fragments and frames for 4, 16 and 64 KiB files, encode/decode time.
bench:
	$(CARGO) test --release --locked --test transport_qr fragments_per_size_figures -- --nocapture
