# Conclave: the commands a new user runs on a fresh Debian machine.
#   make demo   the main job (see README.md)
#   make test   installs what is missing, then runs every check and test
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
DEB_PACKAGES := softhsm2 opensc zbar-tools tmux strace python3 python3-venv dosfstools mtools faketime time \
  libtpm2-pkcs11-1 libtpm2-pkcs11-tools swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus \
  ykcs11 p11-kit-modules libclang-dev
# sigstore-python (Sigstore's Rekor client) checks the key-event log's checkpoints and inclusion
# proofs in tests/transparency.rs; it shares tuf/securesystemslib/cryptography/urllib3 below.
PY_SIGSTORE := sigstore==4.5.1 sigstore-models==0.0.6 sigstore-rekor-types==0.0.18 \
  annotated-types==0.8.0 certifi==2026.10.18 charset-normalizer==3.5.2 dnspython==2.9.2 \
  email-validator==2.4.0 id==1.6.1 idna==3.20 markdown-it-py==4.3.0 mdurl==0.1.2 \
  platformdirs==4.14.7 pydantic==2.14.3 pydantic_core==2.50.4 Pygments==2.21.0 PyJWT==2.15.1 \
  requests==2.34.2 rfc3161-client==1.0.9 rfc8785==0.1.4 rich==15.0.0 \
  typing-inspection==0.4.5 typing_extensions==4.16.0
# The in-toto reference implementation verifies layouts Conclave signs (tests/intoto.rs).
PY_INTOTO := in-toto==3.1.0 attrs==26.1.0 iso8601==2.1.0 pathspec==1.1.1
# python-tuf 7.0.1 requires securesystemslib~=1.0 and urllib3~=2.0; securesystemslib 1.6.0's
# [crypto] extra requires cryptography>=48. Every package of the venv is pinned exactly (checked on
# PyPI 2026-11-23); without [crypto]/cryptography, ECDSA signatures are skipped silently.
PY_PACKAGES := tuf==7.0.1 securesystemslib[crypto]==1.6.0 cryptography==50.0.2 cffi==2.1.1 \
  pycparser==3.12 urllib3==2.8.0 $(PY_SIGSTORE) $(PY_INTOTO)

# RSTUF's CLI (repository-service-tuf 1.0.0b1, `rstuf`) for tests/rstuf.rs, in its own venv: its
# dependencies pull newer certifi/idna/pydantic than PY_PACKAGES pins. Every package pinned
# exactly (PyPI, 2026-12-06); pexpect drives the CLI's interactive prompts on a pseudo-terminal.
RSTUF_VENV ?= .venv-rstuf
PY_RSTUF := repository-service-tuf==1.0.0b1 tuf==7.0.1 securesystemslib[crypto]==1.6.0 \
  cryptography==50.0.2 cffi==2.1.1 pycparser==3.12 urllib3==2.8.0 sigstore==4.5.1 \
  sigstore-models==0.0.6 sigstore-rekor-types==0.0.18 annotated-types==0.8.0 asn1crypto==1.5.1 \
  auto-click-auto==0.1.6 azure-core==1.41.0 azure-keyvault-keys==4.11.3 beaupy==4.0.1 \
  boto3==1.44.18 botocore==1.44.18 certifi==2026.10.19.post1 charset-normalizer==3.5.3 \
  click==8.5.1 configobj==5.0.9 dnspython==2.9.2 dynaconf==3.3.5 email-validator==2.4.0 \
  google-api-core==2.44.0 google-auth==2.63.1 google-cloud-kms==3.18.0 \
  googleapis-common-protos==1.76.0 grpc-google-iam-v1==0.14.6 grpcio==1.85.4 \
  grpcio-status==1.85.3 hvac==2.4.0 id==1.6.1 idna==3.21 isodate==0.7.2 jmespath==1.1.0 \
  markdown-it-py==4.3.0 mdurl==0.1.2 opentelemetry-api==1.45.3 platformdirs==4.14.9 \
  prompt_toolkit==3.0.53 proto-plus==1.29.0 protobuf==7.36.2 pyasn1==0.6.5 \
  pyasn1_modules==0.4.2 pydantic==2.14.4 pydantic_core==2.50.5 Pygments==2.21.0 PyJWT==2.15.1 \
  pykcs11==1.5.20 PyNaCl==1.6.2 python-dateutil==2.9.0.post0 python-yakh==0.4.2 questo==0.4.2 \
  requests==2.34.2 rfc3161-client==1.0.9 rfc8785==0.1.4 rich==15.0.0 rich-click==1.9.9 \
  s3transfer==0.19.3 six==1.17.0 typing-inspection==0.4.5 typing_extensions==4.16.0 \
  wcwidth==0.9.5 setuptools==65.5.0 pexpect==4.9.0 ptyprocess==0.7.0
.PHONY: rstuf-venv
rstuf-venv: $(RSTUF_VENV)/.done
$(RSTUF_VENV)/.done: Makefile | deb-deps
	rm -rf $(RSTUF_VENV)
	python3 -m venv $(RSTUF_VENV)
	$(RSTUF_VENV)/bin/python -m pip install -q --disable-pip-version-check $(PY_RSTUF)
	$(RSTUF_VENV)/bin/rstuf --version
	touch $@

# The bootable image (image/, docs/image.md): Debian's tools that build it and QEMU that tests it.
# UEFI boots through Debian's signed shim and GRUB, which build.sh downloads with the image's other
# packages (no grub-efi-amd64-bin here); ovmf has the firmware for the UEFI and Secure Boot tests.
IMAGE_DEB_PACKAGES := mmdebstrap qemu-system-x86 xorriso grub-pc-bin grub-common \
  mtools dosfstools ovmf squashfs-tools
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo demo-verify test deps deb-deps image-deps venv js-clients client-gate lint no-network-deps unit conformance faults build bench fuzz clean image image-test guide-captures

build:
	$(CARGO) build --release --locked

# The main job: a practice bootstrap-root ceremony on three SoftHSM2 practice tokens in the
# terminal UI, in a new workspace folder rehearsal-YYYYMMDD-HHMMSS; its output is verified at the
# end. Without a terminal (e.g. in CI) the same ceremony runs unattended.
# The demo is built with the `demo` profile (Cargo.toml: unoptimised, no debug information):
# a practice ceremony needs well under a second of machine time, and the first screen comes
# minutes sooner on a fresh machine than with the release profile's link-time optimisation.
DEMO_BIN := $(or $(CARGO_TARGET_DIR),target)/demo/conclave
demo: deb-deps demo-build
	$(DEMO_BIN) rehearse

.PHONY: demo-build
demo-build:
	@echo "make demo: building Conclave for the practice ceremony (about 1.5 minutes on a fresh"
	@echo "2-core machine, seconds once built); then the terminal UI opens."
	$(CARGO) build --profile demo --locked --bin conclave

# Verify Sigstore's real production repository (roots v1 to v12, timestamp, snapshot, targets,
# the npm delegation) as a client saw it on 2025-02-09.
DEMO_REPO := tests/data/vectors/tuf-conformance-static/sigstore-root-signing
demo-verify: demo-build
	$(DEMO_BIN) verify --trusted-root $(DEMO_REPO)/metadata/1.root.json \
	  --repo $(DEMO_REPO)/metadata --at 2025-02-09T12:02:08Z

deps: deb-deps venv js-clients tuf-on-ci-venv rstuf-venv

# Debian packages the tests use (SoftHSM2, zbar, tmux, strace; python3-venv for the venv;
# faketime for the client workflow tests on static repositories of the past; tpm2-pkcs11 on
# swtpm with tpm2-abrmd on a private D-Bus for tests/tpm2_pkcs11.rs; ykcs11 loaded with no
# device in tests/device_profiles.rs; p11-kit-proxy mixing SoftHSM2 and tpm2-pkcs11 in one ceremony;
# libclang-dev for bindgen in the kryoptic build below).
# Installs only what is missing.
deb-deps:
	@$(MAKE) --no-print-directory install-debs PACKAGES="$(DEB_PACKAGES)"
	@$(MAKE) --no-print-directory install-backports

# yubihsm-pkcs11 (Yubico's YubiHSM 2 module) is in bookworm-backports only: fetched through a
# private apt configuration under target/apt-backports (the system's sources stay as they are),
# pinned; its other dependencies come from main. tests/device_profiles.rs loads it with no device.
BACKPORTS_VERSION := 2.6.0-5~bpo12+1
BACKPORTS_PACKAGES := yubihsm-pkcs11=$(BACKPORTS_VERSION) libyubihsm2=$(BACKPORTS_VERSION) \
  libyubihsm-http2=$(BACKPORTS_VERSION) libyubihsm-usb2=$(BACKPORTS_VERSION)
.PHONY: install-backports
install-backports:
	@dpkg-query -W -f='$${Version}' yubihsm-pkcs11 2>/dev/null | grep -qx '$(BACKPORTS_VERSION)' || { \
	  d=$(abspath $(or $(CARGO_TARGET_DIR),target))/apt-backports; \
	  mkdir -p $$d/lists/partial $$d/cache/archives/partial $$d/debs; \
	  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" > $$d/sources.list; \
	  o="-o Dir::Etc::SourceList=$$d/sources.list -o Dir::Etc::SourceParts=/dev/null -o Dir::State::Lists=$$d/lists -o Dir::Cache=$$d/cache"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  echo "installing from bookworm-backports: $(BACKPORTS_PACKAGES)"; \
	  $$SUDO apt-get $$o update -qq && (cd $$d/debs && $$SUDO apt-get $$o download $(BACKPORTS_PACKAGES)) && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$d/debs/*.deb; }

# Debian packages `make image` and `make image-test` use.
image-deps:
	@$(MAKE) --no-print-directory install-debs PACKAGES="$(IMAGE_DEB_PACKAGES)"

.PHONY: install-debs
install-debs:
	@missing=""; for p in $(PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# tuf-on-ci's signing tools for tests/tuf_on_ci.rs: tuf-on-ci-sign 0.21.0 (it provides
# tuf-on-ci-sign and tuf-on-ci-delegate) in a venv of its own. Installed with --no-deps and every
# package pinned (checked on PyPI 2026-12-06): its securesystemslib extras for AWS, Azure, GCP,
# sigstore and TKey signers are not needed with a SoftHSM2 key; the hsm extra is python-pkcs11.
TUF_ON_CI_VENV ?= .venv-tuf-on-ci
PY_TUF_ON_CI := tuf-on-ci-sign==0.21.0 click==8.5.1 packaging==26.4 platformdirs==4.14.7 \
  python-pkcs11==0.10.1 asn1crypto==1.5.1 tuf==7.0.1 securesystemslib==1.6.0 cryptography==50.0.2 \
  cffi==2.1.1 pycparser==3.12 urllib3==2.8.0
DEB_PACKAGES += git openssl
.PHONY: tuf-on-ci-venv
tuf-on-ci-venv: $(TUF_ON_CI_VENV)/.done
$(TUF_ON_CI_VENV)/.done: Makefile | deb-deps
	rm -rf $(TUF_ON_CI_VENV)
	python3 -m venv $(TUF_ON_CI_VENV)
	$(TUF_ON_CI_VENV)/bin/pip install -q --disable-pip-version-check --no-deps $(PY_TUF_ON_CI)
	$(TUF_ON_CI_VENV)/bin/pip check
	$(TUF_ON_CI_VENV)/bin/tuf-on-ci-sign --version
	touch $@

# Python virtualenv with the reference client (python-tuf) for the interoperability tests.
# Debian's python3 needs python3-venv (deb-deps) for `python3 -m venv` to work.
venv: $(VENV)/.done
$(VENV)/.done: Makefile | deb-deps
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(PY_PACKAGES)
	$(PY) -c 'import tuf.ngclient, securesystemslib.signer, cryptography, sigstore._internal.merkle, in_toto.verifylib; print("venv ok: tuf", tuf.__version__)'
	touch $@

# The npm TUF clients tests/client_gate.rs runs: tuf-js 5.0.1 and @sigstore/tuf 4.0.2 (with the
# tuf-js 4.1.0 it depends on, as npm and sigstore-js use it), pinned by tests/js/package-lock.json
# and installed into tests/js/node_modules. tuf-js 5 needs Node.js ^20.17 or >=22.9: Debian 12's
# nodejs (18.20) is too old, so the machine's Node.js and npm are used.
JS_DIR := tests/js
js-clients: $(JS_DIR)/node_modules/.done
$(JS_DIR)/node_modules/.done: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	@node -e 'const [a, b] = process.versions.node.split(".").map(Number); if (a < 20 || (a === 20 && b < 17)) { console.error("error: tuf-js 5 needs Node.js 20.17 or later, found " + process.version); process.exit(1); }'
	cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Clippy covers the conformance client too (feature conformance-client).
lint: no-network-deps
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --all-targets --features conformance-client -- -D warnings
	# The pure core (src/tuf, src/ceremony, src/transcript, src/transparency) does no I/O, reads
	# no host clock and imports no edge (tests/pure_core.rs).
	$(CARGO) test --locked --features conformance-client --test pure_core
	$(CARGO) fmt --check --manifest-path $(PROFILE_CRATE)/Cargo.toml
	$(CARGO) clippy --locked --manifest-path $(PROFILE_CRATE)/Cargo.toml \
	  --target-dir $(PROFILE_TARGET) -- -D warnings

# The device-profile test bench (tests/pkcs11-profile: a PKCS#11 module over SoftHSM2 that
# imposes other vendors' documented behaviour; docs/hsm.md). The tests build it themselves
# (tests/common/profile.rs) into the same place; this target builds it on its own.
PROFILE_CRATE := tests/pkcs11-profile
PROFILE_TARGET := $(or $(CARGO_TARGET_DIR),target)/pkcs11-profile
.PHONY: pkcs11-profile
pkcs11-profile:
	$(CARGO) build --locked --manifest-path $(PROFILE_CRATE)/Cargo.toml --target-dir $(PROFILE_TARGET)

# Kryoptic 1.5.4's PKCS#11 module (a software token with EdDSA) for tests/kryoptic.rs, built once
# into its own target directory: tests/kryoptic pins it (Cargo.lock) and the OpenSSL 3.5.5 sources
# of openssl-src (crates.io), which it links statically (Debian 12's OpenSSL 3.0 is too old for
# kryoptic's Ed25519). The sources are copied out of the cargo registry; libcrypto.a is built here
# with the Configure options ossl-sys 1.5.4's build.rs gives on x86_64 (ossl-sys then finds it and
# only generates its bindings): ossl-sys's own `make` would also build libcrypto.so, which needs
# util/mkdef.pl, one of the files openssl-src leaves out (util/providers.num, another, is written
# here: the symbol a provider module exports, read by Configure). About 10 minutes of CPU time, most of it
# OpenSSL (26 minutes wall measured on 2 cores shared with other builds, load average 8-11);
# nothing once built.
KRYOPTIC_CRATE := tests/kryoptic
KRYOPTIC_TARGET := $(abspath $(or $(CARGO_TARGET_DIR),target))/kryoptic
KRYOPTIC_SO := $(KRYOPTIC_TARGET)/release/libkryoptic_pkcs11.so
KRYOPTIC_OPENSSL_OPTIONS := no-deprecated no-aria no-argon2 no-atexit no-des no-dsa no-cast no-mdc2 \
  no-ec2m no-rc2 no-rc4 no-rc5 no-rmd160 no-seed no-sm2 no-sm3 no-sm4 no-docs no-tests \
  enable-ec_nistp_64_gcc_128 '-DDEVRANDOM=\"/dev/urandom\"'
.PHONY: kryoptic
kryoptic: $(KRYOPTIC_SO)
$(KRYOPTIC_SO): $(KRYOPTIC_CRATE)/Cargo.toml $(KRYOPTIC_CRATE)/Cargo.lock $(KRYOPTIC_CRATE)/src/lib.rs | deb-deps
	@echo "make kryoptic: building kryoptic 1.5.4 and OpenSSL 3.5.5 (about 10 minutes of CPU time, once)"
	@mkdir -p $(KRYOPTIC_TARGET)
	src=$$($(CARGO) metadata --locked --format-version 1 --manifest-path $(KRYOPTIC_CRATE)/Cargo.toml \
	  | python3 -c 'import json, os, sys; m = json.load(sys.stdin); print(next(os.path.dirname(p["manifest_path"]) for p in m["packages"] if p["name"] == "openssl-src"))') && \
	  dir=$(KRYOPTIC_TARGET)/$$(basename "$$src") && \
	  if [ ! -e $$dir/.copied ]; then \
	    rm -rf $$dir && cp -r "$$src/openssl" $$dir && \
	    printf 'OSSL_provider_init 1\t*\tEXIST::FUNCTION:\n' > $$dir/util/providers.num && \
	    touch $$dir/.copied; fi && \
	  if [ ! -f $$dir/libcrypto.a ]; then \
	    (cd $$dir && { [ -f Makefile ] || ./Configure $(KRYOPTIC_OPENSSL_OPTIONS); } && \
	     $(MAKE) build_generated && $(MAKE) -j$$(nproc) libcrypto.a); fi && \
	  KRYOPTIC_OPENSSL_SOURCES=$$dir $(CARGO) build --release --locked \
	    --manifest-path $(KRYOPTIC_CRATE)/Cargo.toml --target-dir $(KRYOPTIC_TARGET)
	@test -f $@ && touch $@

# The default build (the appliance's `conclave`) must not link an HTTP client: only the
# conformance client's feature brings one in.
no-network-deps:
	@if $(CARGO) tree --locked -e normal --prefix none \
	    | grep -iE '^(ureq|ureq-proto|reqwest|hyper|http|curl|isahc|attohttpc|minreq) v'; then \
	  echo "error: the default build depends on the HTTP crate(s) above"; exit 1; \
	else echo "default build: no HTTP crate"; fi

# Every test, with the conformance client built (feature conformance-client) so that
# tests/conformance_client.rs runs; the last line sums what every test binary reported
# ("total: N passed, N failed").
unit: kryoptic
	@mkdir -p target
	set -o pipefail; CONCLAVE_PYTHON=$(abspath $(PY)) CONCLAVE_KRYOPTIC=$(KRYOPTIC_SO) \
	  CONCLAVE_TUF_ON_CI=$(abspath $(TUF_ON_CI_VENV))/bin CONCLAVE_RSTUF_PYTHON=$(abspath $(RSTUF_VENV))/bin/python \
	  $(CARGO) test --locked --features conformance-client 2>&1 | tee target/test.log
	@awk '/^test result:/ {p += $$4; f += $$6} END {printf "total: %d passed, %d failed\n", p, f}' target/test.log

# The air-gapped bootable image: image/out/conclave.iso (hybrid BIOS/UEFI; UEFI through Debian's
# signed shim, GRUB and kernel, so it boots with Secure Boot on), its package list
# image/out/manifest.txt, and its SHA-256 printed at the end. Needs root (mmdebstrap, chroot).
image: build image-deps
	$(SUDO) env SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) \
	  CONCLAVE_BIN=$(abspath $(or $(CARGO_TARGET_DIR),target))/release/conclave image/build.sh

# Boots the image in QEMU (TCG, no network device) three ways: BIOS with a virtual USB stick (the
# air-gap check and a practice ceremony inside; the stick verified afterwards on this machine),
# plain UEFI, and UEFI with Secure Boot enforced (OVMF with Microsoft's keys).
image-test: image venv
	CONCLAVE_PYTHON=$(abspath $(PY)) CONCLAVE=$(abspath $(or $(CARGO_TARGET_DIR),target))/release/conclave \
	  timeout 1800 python3 image/boot_test.py

test: deps lint unit image-test

# Only the TUF client workflow tests: conclave-conformance-client beside python-tuf's ngclient
# on python-tuf-made repositories (tests/conformance_client.rs), and the core steps it uses
# (tests/client_workflow.rs). Part of `make test` too.
conformance: venv
	CONCLAVE_PYTHON=$(abspath $(PY)) $(CARGO) test --locked --features conformance-client \
	  --test conformance_client --test client_workflow

# The terminal UI's screen captures in docs/ceremony-guide.md and README.md, from a real run:
# tests/tui_tmux.rs drives the UI in tmux at 80x24 and saves each screen to target/tui-captures/,
# then tests/guide_captures.py writes each capture where a `<!-- capture: NAME -->` line names it.
guide-captures: venv deb-deps
	rm -rf target/tui-captures
	CONCLAVE_PYTHON=$(abspath $(PY)) $(CARGO) test --locked --test tui_tmux
	python3 tests/guide_captures.py target/tui-captures docs/ceremony-guide.md README.md

# Only the fault-injection suite (tests/faults.rs, docs/security.md "Fault injection"): a practice
# bootstrap-root, rotate-root-keys and sign-rstuf-pending-root killed at every durable boundary
# (the other RSTUF ceremonies in their final writes), each rerun to a verified ceremony; prints
# points tried and held per ceremony. Part of `make test` too (deb-deps: SoftHSM2
# and pkcs11-tool). FAULTS_QUICK=1 tries every 7th point only.
faults: deb-deps
	$(if $(FAULTS_QUICK),CONCLAVE_FAULTS_QUICK=1) $(CARGO) test --locked --test faults -- --nocapture

# Only the compatibility gate against the real clients (tests/client_gate.rs): prints the table
# of docs/verification.md. Part of `make test` too.
client-gate: venv js-clients
	CONCLAVE_PYTHON=$(abspath $(PY)) $(CARGO) test --locked --test client_gate -- --nocapture

# One table: `conclave verify`, python-tuf 7, tough and the floor (SHA-256 + one check per
# signature) on a 30-version root chain, 100,000 targets and 1,000 delegated roles (generated
# once into bench-out/). Not part of `make test`.
# Also prints the QR transport figures: fragments and frames for 4, 16 and 64 KiB files, and
# signatures per second through SoftHSM2 (conclave against pkcs11-tool), and the time to build
# and draw the review of 10,000 claimed projects (docs/ceremony-guide.md, "A large review").
bench: venv deb-deps
	CONCLAVE_PYTHON=$(abspath $(PY)) CARGO=$(CARGO) tests/bench/run.sh
	$(CARGO) test --release --locked --test transport_qr fragments_per_size_figures -- --nocapture
	$(CARGO) test --release --locked --lib tui::view::tests::large_review_figures -- --ignored --exact --nocapture
	python3 tests/bench/token_bench.py --conclave $${CARGO_TARGET_DIR:-target}/release/conclave

# Runs every cargo fuzz target (tests/fuzz) for FUZZ_SECONDS each (default 60) from a seed
# corpus of tests/data; installs cargo-fuzz if missing. Not part of `make test`.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO=$(CARGO) tests/fuzz/run.sh

clean:
	rm -rf target $(VENV) $(TUF_ON_CI_VENV) $(RSTUF_VENV)
