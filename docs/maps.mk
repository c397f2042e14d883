# maps.mk: rebuild Postfix lookup tables with swiftpostmap, only the ones whose source
# changed. Include it from your Makefile or run it directly:
#
#   make -f maps.mk MAPS="virtual vmailbox" ALIASES=aliases POSTFIX_CONFIG=/etc/postfix
#   make -f maps.mk check      # --lint every source, --verify every table
#   make -f maps.mk reload     # rebuild, then `postfix reload` once if anything was rebuilt
#
# See docs/makefile-rule.md. Every variable can be set on the command line or before the
# include line.

# The program (a path, or a name on PATH).
SWIFTPOSTMAP ?= swiftpostmap
# postmap(5)-syntax sources (virtual, vmailbox, transport, ...), relative to the current
# directory or absolute.
MAPS ?=
# aliases(5) sources, built as postalias builds them.
ALIASES ?=
# Table type for all of them: hash or btree (NAME.db), lmdb (NAME.lmdb), cdb (NAME.cdb).
MAP_TYPE ?= hash
# The directory of the main.cf the tables are for (key folding and myhostname depend on
# it); empty: swiftpostmap's default ($MAIL_CONFIG, else /etc/postfix).
POSTFIX_CONFIG ?=
# Extra options for builds (e.g. -p) and for --lint (e.g. --werror).
BUILD_FLAGS ?=
LINT_FLAGS ?=
# Run by `make reload` after a rebuild; empty to skip.
POSTFIX_RELOAD ?= postfix reload
# Touched after a reload, so the next `make reload` reloads only if a table changed since.
RELOAD_STAMP ?= .maps-reloaded

MAP_SUFFIX := $(if $(filter lmdb,$(MAP_TYPE)),.lmdb,$(if $(filter cdb,$(MAP_TYPE)),.cdb,.db))
MAP_TABLES := $(addsuffix $(MAP_SUFFIX),$(MAPS))
ALIAS_TABLES := $(addsuffix $(MAP_SUFFIX),$(ALIASES))
SWIFTPOSTMAP_CONFIG = $(if $(POSTFIX_CONFIG),-c $(POSTFIX_CONFIG))

.PHONY: all maps check maps-check reload maps-reload

all: maps
check: maps-check
reload: maps-reload

maps: $(MAP_TABLES) $(ALIAS_TABLES)

# Static pattern rules: a table depends on its source and is rebuilt only when the source
# is newer. These rules apply to the listed tables only, not to every *.db in the tree.
$(MAP_TABLES): %$(MAP_SUFFIX): %
	$(SWIFTPOSTMAP) $(SWIFTPOSTMAP_CONFIG) $(BUILD_FLAGS) $(MAP_TYPE):$<

$(ALIAS_TABLES): %$(MAP_SUFFIX): %
	$(SWIFTPOSTMAP) --aliases $(SWIFTPOSTMAP_CONFIG) $(BUILD_FLAGS) $(MAP_TYPE):$<

# swiftpostmap replaces a table by renaming a finished file over it: an interrupted build
# leaves the old table. Never let make delete a table on an interrupt or an error.
.PRECIOUS: $(MAP_TABLES) $(ALIAS_TABLES)

# Lint the sources (exit 1 on errors, with --werror in LINT_FLAGS also on warnings), then
# check that every table holds what its source compiles to. Builds nothing.
maps-check:
ifneq ($(strip $(MAPS)),)
	$(SWIFTPOSTMAP) --lint $(SWIFTPOSTMAP_CONFIG) $(LINT_FLAGS) $(MAPS)
endif
ifneq ($(strip $(ALIASES)),)
	$(SWIFTPOSTMAP) --lint --kind aliases $(SWIFTPOSTMAP_CONFIG) $(LINT_FLAGS) $(ALIASES)
endif
	@status=0; \
	for map in $(MAPS); do \
	  $(SWIFTPOSTMAP) --verify $(SWIFTPOSTMAP_CONFIG) $(MAP_TYPE):$$map || status=1; \
	done; \
	for map in $(ALIASES); do \
	  $(SWIFTPOSTMAP) --verify --aliases $(SWIFTPOSTMAP_CONFIG) $(MAP_TYPE):$$map || status=1; \
	done; \
	exit $$status

maps-reload: $(RELOAD_STAMP)

$(RELOAD_STAMP): $(MAP_TABLES) $(ALIAS_TABLES)
	$(POSTFIX_RELOAD)
	@touch $@
