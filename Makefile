# Conclave: the commands a new user runs on a fresh Debian machine.
#   make demo   the main job (see README.md)
#   make test   installs what is missing, then runs every check and test
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := softhsm2 opensc zbar-tools tmux strace python3 python3-venv dosfstools mtools
# python-tuf 7.0.1 requires securesystemslib~=1.0 and urllib3~=2.0; securesystemslib 1.6.0's
# [crypto] extra requires cryptography>=48. Every package of the venv is pinned exactly (checked on
# PyPI 2026-11-23); without [crypto]/cryptography, ECDSA signatures are skipped silently.
PY_PACKAGES := tuf==7.0.1 securesystemslib[crypto]==1.6.0 cryptography==50.0.2 cffi==2.1.1 \
  pycparser==3.12 urllib3==2.8.0

.PHONY: demo demo-verify test deps deb-deps venv lint unit build bench fuzz clean

build:
	$(CARGO) build --release --locked

# The main job: a practice bootstrap-root ceremony on three SoftHSM2 practice tokens, unattended,
# in a new workspace folder rehearsal-YYYYMMDD-HHMMSS; its output is verified at the end.
demo: build deb-deps
	./target/release/conclave rehearse --headless

# Verify Sigstore's real production repository (roots v1 to v12, timestamp, snapshot, targets,
# the npm delegation) as a client saw it on 2025-02-09.
DEMO_REPO := tests/data/vectors/tuf-conformance-static/sigstore-root-signing
demo-verify: build
	./target/release/conclave verify --trusted-root $(DEMO_REPO)/metadata/1.root.json \
	  --repo $(DEMO_REPO)/metadata --at 2025-02-09T12:02:08Z

deps: deb-deps venv

# Debian packages the tests use (SoftHSM2, zbar, tmux, strace; python3-venv for the venv).
# Installs only what is missing.
deb-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Python virtualenv with the reference client (python-tuf) for the interoperability tests.
# Debian's python3 needs python3-venv (deb-deps) for `python3 -m venv` to work.
venv: $(VENV)/.done
$(VENV)/.done: Makefile | deb-deps
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(PY_PACKAGES)
	$(PY) -c 'import tuf.ngclient, securesystemslib.signer, cryptography; print("venv ok: tuf", tuf.__version__)'
	touch $@

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

# Every test; the last line sums what every test binary reported ("total: N passed, N failed").
unit:
	@mkdir -p target
	set -o pipefail; CONCLAVE_PYTHON=$(abspath $(PY)) $(CARGO) test --locked 2>&1 | tee target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "total: %d passed, %d failed\n", p, f}' target/test.log

test: deps lint unit

# One table: `conclave verify`, python-tuf 7, tough and the floor (SHA-256 + one check per
# signature) on a 30-version root chain, 100,000 targets and 1,000 delegated roles (generated
# once into bench-out/). Not part of `make test`.
# Also prints the QR transport figures: fragments and frames for 4, 16 and 64 KiB files, and
# signatures per second through SoftHSM2 (conclave against pkcs11-tool).
bench: venv deb-deps
	CONCLAVE_PYTHON=$(abspath $(PY)) CARGO=$(CARGO) tests/bench/run.sh
	$(CARGO) test --release --locked --test transport_qr fragments_per_size_figures -- --nocapture
	python3 tests/bench/token_bench.py --conclave $${CARGO_TARGET_DIR:-target}/release/conclave

# Runs every cargo fuzz target (tests/fuzz) for FUZZ_SECONDS each (default 60) from a seed
# corpus of tests/data; installs cargo-fuzz if missing. Not part of `make test`.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO=$(CARGO) tests/fuzz/run.sh

clean:
	rm -rf target $(VENV)
