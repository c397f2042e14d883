SHELL := /bin/bash
# swiftpostmap: build, test, demo, lint and benchmark.
#
#   make demo    install what is missing, build, compile and query the example tables
#   make test    install what is missing (the real Postfix is the test oracle), build, test,
#                then run the library examples (make example)
#   make example build and run Examples/, a package that uses the MapCompiler library
#   make lint    fail on unformatted Swift code
#   make bench   real postmap against swiftpostmap on generated tables
#
# Debian packages are installed with apt-get when missing (run as root).

SWIFT        ?= swift
# The release binary carries the Swift runtime (it starts faster and needs only libc,
# libdb and the C++ runtime on the mail server).
RELEASE_FLAGS := -c release --static-swift-stdlib
CONFIG       ?= release
PACKAGES     := libdb-dev db-util postfix
BENCH_PACKAGES := time gnuplot-nox
BIN_DEBUG    := .build/debug/swiftpostmap
BIN_RELEASE  := .build/release/swiftpostmap
FORMAT_PATHS := Package.swift Sources Tests Examples

.PHONY: all deps bench-deps build build-debug test example demo lint format bench clean casefold-table

all: build

deps:
	@scripts/install-deps.sh $(PACKAGES)

bench-deps: deps
	@scripts/install-deps.sh $(BENCH_PACKAGES)

build: deps
	$(SWIFT) build $(RELEASE_FLAGS)

build-debug: deps
	$(SWIFT) build

test: deps
	$(SWIFT) build
	SWIFTPOSTMAP_BIN=$(CURDIR)/$(BIN_DEBUG) $(SWIFT) test --no-parallel 2>&1 | tee .build/test.log; \
	  exit $${PIPESTATUS[0]}
	$(MAKE) example

example: deps
	cd Examples && $(SWIFT) build && .build/debug/MapCompilerExamples $(CURDIR)

demo: build
	@scripts/demo.sh $(CURDIR)/$(BIN_RELEASE)

lint:
	$(SWIFT) format lint --strict --recursive $(FORMAT_PATHS)

format:
	$(SWIFT) format --in-place --recursive $(FORMAT_PATHS)

bench: bench-deps
	$(SWIFT) build $(RELEASE_FLAGS)
	@scripts/bench.sh $(CURDIR)/$(BIN_RELEASE) $(CURDIR)/docs

casefold-table:
	scripts/install-deps.sh unicode-data
	python3 scripts/gen-casefold.py

clean:
	rm -rf .build Examples/.build
