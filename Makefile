# blobfs: two commands for a newcomer on a fresh Debian machine.
#   make run    install what is missing, build, and show blobfs on a demo registry store
#   make test   install what is missing and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

# System packages: build (pkg-config, OpenSSL, libfuse3, libcurl for the S3 driver) and what the
# tests drive (the real registry and Redis, curl, rsync, getfattr from attr, tar, skopeo and umoci,
# bindfs, promtool from prometheus, and a one-node Ceph for radosgw, the S3 server that checks
# signatures as AWS does: scripts/radosgw.sh).
APT_PACKAGES := pkg-config libssl-dev fuse3 libfuse3-dev libhiredis-dev libcurl4-openssl-dev docker-registry redis-server curl rsync attr tar skopeo umoci bindfs prometheus radosgw ceph-mon ceph-osd ceph-common uuid-runtime iproute2
# The S3 server the S3 driver's tests start (moto's own server, from PyPI: Debian has none that runs here).
MOTO_REQUIREMENT := moto[s3]==5.2.1
# What `make bench` needs besides the build: the contenders (bindfs, rclone, s3fs), a C compiler for
# its timing helper, openssl for its seeded data, and matplotlib (for Debian's python3) for its chart.
BENCH_PACKAGES := bindfs rclone s3fs gcc openssl python3-matplotlib
# The binary `make bench` measures.
BLOBFS ?= .build/release/blobfs
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT ?= swift
# SwiftPM 6.3 leaves a few empty TemporaryDirectory.* behind in $TMPDIR on every build and test:
# give it a directory of its own under .build, emptied of them after each run.
SWIFT_TMP := $(CURDIR)/.build/tmp
SWIFTPM = mkdir -p $(SWIFT_TMP) && TMPDIR=$(SWIFT_TMP) $(SWIFT)
SWIFTPM_TIDY = rm -rf $(SWIFT_TMP)/TemporaryDirectory.*

.PHONY: help deps build release test run clean bench bench-deps

help:
	@echo "make run    build and show blobfs on a demo registry store"
	@echo "make test   run every test (installs missing system packages first)"

# Installs only what is missing of a package list; one `apt-get update` if the first install
# fails (stale lists).
define install_missing
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "Installing missing packages:" $$missing; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(SUDO) apt-get install -y --no-install-recommends $$missing \
	    || { $(SUDO) apt-get update && $(SUDO) apt-get install -y --no-install-recommends $$missing; }; \
	fi
endef

deps:
	$(call install_missing,$(APT_PACKAGES))
	@python3 -c 'import moto.server, flask, flask_cors' 2>/dev/null \
	    || { echo "Installing moto (the tests' S3 server)"; python3 -m pip install --quiet '$(MOTO_REQUIREMENT)' flask flask-cors; }

build: deps
	$(SWIFTPM) build; status=$$?; $(SWIFTPM_TIDY); exit $$status

release: deps
	$(SWIFTPM) build -c release; status=$$?; $(SWIFTPM_TIDY); exit $$status

test: deps
	$(SWIFTPM) test; status=$$?; $(SWIFTPM_TIDY); exit $$status

run: release
	@bash scripts/demo.sh

bench-deps:
	$(call install_missing,$(BENCH_PACKAGES))

# Measures blobfs against native reads, bindfs and rclone mount (a few minutes; root for the cold
# figure), then blobfs on S3 against rclone mount and s3fs over a one-node radosgw (bench/s3.sh,
# its Ceph from `deps`; BENCH_S3=off skips it), and writes the results into docs/benchmarks.md and
# docs/benchmarks.png.
bench: release bench-deps
	BLOBFS=$(BLOBFS) BENCH_COMMAND="make bench" bash bench/run.sh

clean:
	rm -rf .build
