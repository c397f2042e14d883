SHELL := /bin/bash
# swiftpostmap: build, test, demo, lint and benchmark.
#
#   make demo    install what is missing, build, compile and query the example tables
#   make test    install what is missing (the real Postfix is the test oracle), build, test,
#                then run the library examples (make example)
#   make example build and run Examples/, a package that uses the MapCompiler library
#   make lint    fail on unformatted Swift code
#   make bench   real postmap against swiftpostmap on generated tables
#   make fuzz    the seeded parser fuzzing of make test, with 1,000,000 inputs (FUZZ_COUNT)
#   make reliability  README's promises against the release binary (as root, 10-20 minutes):
#                kills during rebuilds, full disk and ulimit -f, 1,000 damaged tables,
#                readers and writers at once, symlinks/permissions/ownership
#   make sanitize  the whole test suite under AddressSanitizer and ThreadSanitizer
#                (SANITIZERS=address or thread for one); fails on any sanitizer report
#   make install   the release binary, man page and bash/zsh/fish completions under PREFIX
#                (/usr/local; DESTDIR for staging); make uninstall removes exactly those
#   make install-compat  postmap and postalias links to it in COMPATDIR (PREFIX/sbin); an
#                existing file there (the real Postfix's) is kept unless FORCE=1, which moves
#                it aside; make uninstall-compat (or uninstall) puts it back
#   make deb     swiftpostmap_VERSION_ARCH.deb in DEBDIR (.build), built with dpkg-deb
#
# Debian packages are installed with apt-get when missing (run as root).

SWIFT        ?= swift
# The release binary links the Swift runtime, libdb, liblmdb, tinycdb and the C++ runtime
# statically and needs only glibc (libc, libm, libgcc_s): it starts faster than postmap and
# can be copied onto a mail server that has neither Swift nor those libraries. glibc stays
# shared, because a static glibc crashes in the NSS modules (libnss_systemd) that getpwnam
# loads. The linker takes a library from the first directory that has it, so STATIC_LIBS,
# holding only the archives, makes `-ldb`, `-llmdb`, `-lcdb` and `-lstdc++` static.
STATIC_LIBS  := $(CURDIR)/.build/static-libs
RELEASE_FLAGS := -c release --static-swift-stdlib -Xswiftc -L$(STATIC_LIBS)
CONFIG       ?= release
# What a build needs; then what the tests use as the oracle (the real Postfix and db_dump).
PACKAGES     := libdb-dev liblmdb-dev libcdb-dev libpq-dev libstdc++-12-dev
ORACLE_PACKAGES := db-util postfix postfix-lmdb postfix-cdb postgresql postfix-pgsql
BENCH_PACKAGES := time gnuplot-nox
# What the tests of the man page, completions and terminal output run.
TEST_PACKAGES := man-db groff-base bsdutils zsh fish
BIN_DEBUG    := .build/debug/swiftpostmap
BIN_RELEASE  := .build/release/swiftpostmap
FORMAT_PATHS := Package.swift Sources Tests Examples
VERSION      := $(shell sed -n 's/^let swiftpostmapVersion = "\(.*\)"/\1/p' Sources/PostmapCommandLine/ExtensionCommands.swift)
PREFIX       ?= /usr/local
DESTDIR      ?=
COMPATDIR    ?= $(PREFIX)/sbin
# The binary make install installs: the release build (made when missing).
INSTALL_BIN  ?= $(BIN_RELEASE)
DEBDIR       ?= $(CURDIR)/.build
INSTALL_ENV  = DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" COMPATDIR="$(COMPATDIR)" FORCE="$(FORCE)"

.PHONY: all deps oracle-deps bench-deps test-deps static-libs fuzz reliability sanitize build build-debug test example demo lint \
	format bench clean casefold-table install uninstall install-compat uninstall-compat deb

all: build

deps:
	@scripts/install-deps.sh $(PACKAGES)

oracle-deps: deps
	@scripts/install-deps.sh $(ORACLE_PACKAGES)

bench-deps: oracle-deps
	@scripts/install-deps.sh $(BENCH_PACKAGES)

test-deps: oracle-deps
	@scripts/install-deps.sh $(TEST_PACKAGES)

build: deps static-libs
	$(SWIFT) build $(RELEASE_FLAGS)

static-libs: deps
	@mkdir -p $(STATIC_LIBS)
	@for lib in libstdc++ libdb liblmdb libcdb; do \
	  f=$$(clang -print-file-name=$$lib.a); \
	  [ -f "$$f" ] || { echo "make: $$lib.a not found (libstdc++-12-dev, libdb-dev, liblmdb-dev, libcdb-dev)" >&2; exit 1; }; \
	  ln -sf "$$f" $(STATIC_LIBS)/$$lib.a; \
	done

build-debug: deps
	$(SWIFT) build

test: test-deps static-libs
	$(SWIFT) build
	$(SWIFT) build $(RELEASE_FLAGS)
	SWIFTPOSTMAP_BIN=$(CURDIR)/$(BIN_DEBUG) SWIFTPOSTMAP_RELEASE_BIN=$(CURDIR)/$(BIN_RELEASE) $(SWIFT) test --no-parallel 2>&1 | tee .build/test.log; \
	  exit $${PIPESTATUS[0]}
	$(MAKE) example

example: deps
	cd Examples && $(SWIFT) build && .build/debug/MapCompilerExamples $(CURDIR)

demo: oracle-deps build
	@scripts/demo.sh $(CURDIR)/$(BIN_RELEASE)

lint:
	$(SWIFT) format lint --strict --recursive $(FORMAT_PATHS)

format:
	$(SWIFT) format --in-place --recursive $(FORMAT_PATHS)

bench: bench-deps static-libs
	$(SWIFT) build $(RELEASE_FLAGS)
	@scripts/bench.sh $(CURDIR)/$(BIN_RELEASE) $(CURDIR)/docs

reliability: oracle-deps build
	@scripts/reliability.sh $(CURDIR)/$(BIN_RELEASE)

SANITIZERS ?= address thread
sanitize: test-deps build
	@scripts/sanitize.sh $(SANITIZERS)

casefold-table:
	scripts/install-deps.sh unicode-data
	python3 scripts/gen-casefold.py

FUZZ_COUNT ?= 1000000
fuzz: deps
	SWIFTPOSTMAP_FUZZ_COUNT=$(FUZZ_COUNT) $(SWIFT) test -c release -Xswiftc -enable-testing --filter FuzzTests

$(BIN_RELEASE):
	$(MAKE) build

# The default binary is rebuilt first when the sources changed; one named with INSTALL_BIN
# is taken as it is.
INSTALL_BUILD := $(if $(filter $(BIN_RELEASE),$(INSTALL_BIN)),build)

install: $(INSTALL_BUILD) | $(INSTALL_BIN)
	@$(INSTALL_ENV) scripts/install.sh install $(INSTALL_BIN)

uninstall:
	@$(INSTALL_ENV) scripts/install.sh uninstall

install-compat:
	@$(INSTALL_ENV) scripts/install.sh install-compat $(PREFIX)/bin/swiftpostmap

uninstall-compat:
	@$(INSTALL_ENV) scripts/install.sh uninstall-compat

deb: $(INSTALL_BUILD) | $(INSTALL_BIN)
	@scripts/make-deb.sh $(INSTALL_BIN) $(VERSION) $(DEBDIR)

clean:
	rm -rf .build Examples/.build
