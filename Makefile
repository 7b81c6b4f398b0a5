# darvaza - one non-recursive Makefile.  `make demo` and `make test` do all
# the set-up on a fresh Debian 12 machine (see README.md).
#
#   make            build everything (build/)
#   make deps       apt-get what is missing (idempotent)
#   make test       deps + normal and ASan/UBSan builds + every test
#   make demo       deps + build + demo PKI + peers + gateway in the foreground
#   make demo-cluster  the same with two gateways behind haproxy, Redis (Sentinel)
#                   and PostgreSQL (demo/cluster.sh; docs/operations.md "Several instances")
#   make bench      gateway vs nginx with h2load (not part of make test)
#   make bench-compare BASE=REV   the same for REV and for this tree, and the ratios
#   make fuzz       build the libFuzzer targets and run each briefly
#   make lint       clang-format check and the dependency check (tools/depcheck.py)
#   make install    binaries, man pages, example config and policies, systemd unit,
#                   sysusers/tmpfiles/logrotate snippets (PREFIX, DESTDIR, BUILD)
#   make deb        the Debian package (dpkg-buildpackage -us -uc -b) into build/deb/

BUILD    ?= build
CC       ?= cc
SANITIZE ?=

DEB_PACKAGES := build-essential pkg-config libssl-dev libnghttp2-dev libev-dev \
	libcurl4-openssl-dev libjansson-dev libyaml-dev libargon2-dev liboath-dev \
	libqrencode-dev libsqlite3-dev libp11-dev libcmocka-dev softhsm2 opensc \
	oathtool nghttp2-client curl nginx jq sqlite3 clang libclang-rt-14-dev \
	zbar-tools valgrind librsvg2-bin libengine-pkcs11-openssl chromium nodejs \
	fonts-dejavu-core python3 python3-hpack xxd \
	libsystemd-dev systemd mandoc debhelper fakeroot dpkg-dev \
	libpq-dev postgresql \
	redis-server redis-sentinel libhiredis-dev haproxy apache2 \
	libapache2-mod-auth-openidc python3-authlib libnss3-tools p11-kit
# tools/verify_assertion.py and t_assertion_batch.sh: a back end's JWT library
DEB_PACKAGES += python3-jwt
# tests/browser: the notice's ASiC-S container is opened with unzip
DEB_PACKAGES += unzip
# tests/run.sh: each integration script in its own network namespace
# (unshare from util-linux, ip and ss from iproute2)
DEB_PACKAGES += iproute2 util-linux
# t_install: the installed logrotate snippet is run (not on every minimal image)
DEB_PACKAGES += logrotate

PKGS := openssl libnghttp2 jansson yaml-0.1 libcurl libargon2 liboath libqrencode \
	sqlite3 libp11 libsystemd libpq hiredis

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wvla -Wimplicit-fallthrough -Wno-unused-parameter \
	-Werror=deprecated-declarations
HARDEN := -fstack-protector-strong -fPIE
ifeq ($(SANITIZE),)
HARDEN += -D_FORTIFY_SOURCE=2
OPT    := -O2 -g
else
OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS  += -std=c17 -D_GNU_SOURCE $(OPT) $(WARN) $(HARDEN) -Ilib -Igateway $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now -pthread $(if $(SANITIZE),-fsanitize=$(SANITIZE))
LDLIBS  += $(PKG_LIBS) -lev -lm

LIB_SRCS  := $(sort $(wildcard lib/*/*.c))
GW_MAINS  := gateway/daemon/main.c $(wildcard gateway/cli/*.c)
GW_SRCS   := $(filter-out $(GW_MAINS),$(sort $(wildcard gateway/*/*.c)))
CLI_SRCS  := $(sort $(wildcard gateway/cli/*.c))
PEER_SRCS := $(sort $(wildcard peers/*.c))
CARD_SRCS := $(sort $(wildcard pkcs11/*.c))
# Unit tests anywhere under tests/unit, mirroring the tree; each builds to
# $(BUILD)/tests/<its file name> (tests/run.sh runs $(BUILD)/tests/test_*).
UNIT_SRCS := $(sort $(shell find tests/unit -name 'test_*.c'))
HARNESS_SRCS := $(sort $(wildcard tests/unit/harness/*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBDZ  := $(BUILD)/libdarvaza.a
LIBGW  := $(BUILD)/libgateway.a
LIBTH  := $(BUILD)/libtestharness.a
BINS   := $(BUILD)/darvazad $(BUILD)/darvaza \
	$(if $(PEER_SRCS),$(BUILD)/darvaza-peer) $(if $(CARD_SRCS),$(BUILD)/darvaza-card)
UNITS  := $(foreach s,$(UNIT_SRCS),$(BUILD)/tests/$(basename $(notdir $(s))))
ifneq ($(words $(UNITS)),$(words $(sort $(UNITS))))
$(error two unit tests share a file name: $(sort $(notdir $(UNIT_SRCS))))
endif
REPLAYS := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/replay_%,$(FUZZ_SRCS))

.PHONY: all deps test test-fast unit demo bench bench-compare fuzz lint clean
.DEFAULT_GOAL := all

all: $(BINS) $(UNITS) $(REPLAYS)

deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "all Debian packages present"; fi

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The version (VERSION) and commit reach version.c only; the stamp file
# changes when HEAD does, so a new commit recompiles that one object.
DZ_VERSION_STR := $(shell cat VERSION)
DZ_COMMIT_STR  := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
$(BUILD)/commit-stamp: FORCE
	@mkdir -p $(dir $@); echo '$(DZ_COMMIT_STR)' | cmp -s - $@ || echo '$(DZ_COMMIT_STR)' > $@
$(BUILD)/obj/lib/base/version.o: CFLAGS += -DDZ_VERSION='"$(DZ_VERSION_STR)"' -DDZ_COMMIT='"$(DZ_COMMIT_STR)"'
$(BUILD)/obj/lib/base/version.o: VERSION $(BUILD)/commit-stamp
.PHONY: FORCE
FORCE:

$(LIBDZ): $(call obj,$(LIB_SRCS))
	@rm -f $@; ar rcs $@ $^

$(LIBGW): $(call obj,$(GW_SRCS))
	@rm -f $@; ar rcs $@ $^

$(BUILD)/darvazad: $(call obj,gateway/daemon/main.c) $(LIBGW) $(LIBDZ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/darvaza: $(call obj,$(CLI_SRCS)) $(LIBGW) $(LIBDZ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/darvaza-peer: $(call obj,$(PEER_SRCS)) $(LIBDZ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/darvaza-card: $(call obj,$(CARD_SRCS)) $(LIBDZ)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

# Unit tests may #include the .c under test for its statics; they link
# against both libraries (the linker takes only what is used).  A test that
# includes "harness/fake_..." (tests/unit/harness: fake dz_req_*/dz_worker_*,
# see its README) links that archive first, so the fakes stand in for the
# engine's h2req.o/httpd.o, which are then never pulled.  The harness's
# parts that a test of the real engine may use are linked as their objects,
# never through the archive, each into the tests that include its header:
# the malloc hook (harness/fail_alloc.h), the raw HTTP/2 client and the
# engine on a loopback port (harness/h2raw_client.h, h2raw_server.h), a
# store wrapper whose hook can fail or interleave calls (harness/store_wrap.h).
$(BUILD)/obj/tests/%.o: CFLAGS += -Itests/unit
HARNESS_USERS := $(shell grep -l '^\#include "harness/fake_' $(UNIT_SRCS))

$(LIBTH): $(call obj,$(HARNESS_SRCS))
	@rm -f $@; ar rcs $@ $^

HARNESS_OBJECTS := fail_alloc h2raw_client h2raw_server store_wrap
harness_users = $(shell grep -l '^\#include "harness/$(1).h"' $(UNIT_SRCS))
$(foreach h,$(HARNESS_OBJECTS),$(eval USERS_$(h) := $(call harness_users,$(h))))
harness_objects = $(foreach h,$(HARNESS_OBJECTS),$(if $(filter $(1),$(USERS_$(h))),$(call obj,tests/unit/harness/$(h).c)))

# A test that includes "harness/fail_alloc.h" is also linked with
# --wrap=malloc: every malloc of the test and of both libraries goes
# through that hook, which can make one of them fail (docs/testing.md
# "Out of memory").  Only those tests: the others keep the plain malloc.
FAIL_ALLOC_USERS := $(USERS_fail_alloc)
WRAP_MALLOC := -Wl,--wrap=malloc

define unit_test
$(BUILD)/tests/$(basename $(notdir $(1))): $(call obj,$(1)) $(call harness_objects,$(1)) $(if $(filter $(1),$(HARNESS_USERS)),$(LIBTH)) $(LIBGW) $(LIBDZ)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) $(if $(filter $(1),$(FAIL_ALLOC_USERS)),$$(WRAP_MALLOC)) $$^ $$(LDLIBS) -lcmocka -o $$@
endef
$(foreach s,$(UNIT_SRCS),$(eval $(call unit_test,$(s))))

# Each fuzz target also builds, with any compiler, as a replayer of its corpus.
$(BUILD)/tests/replay_%: $(call obj,tests/fuzz/%.c) $(call obj,tests/fuzz/replay_main.c) $(LIBGW) $(LIBDZ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@

unit: $(UNITS)
	@for t in $(UNITS); do $$t || exit 1; done

# make test: the normal build (used by the demo/bench) and the sanitizer build,
# then every test against the sanitizer build.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: deps
	$(MAKE) -j$(JOBS) all
	$(MAKE) -j$(JOBS) BUILD=build/asan SANITIZE=address,undefined all
	$(MAKE) lint
	BUILD_DIR=build/asan tests/run.sh

# Quicker loop for developers: no deps check, no ASan.
test-fast: all
	BUILD_DIR=$(BUILD) tests/run.sh

demo: deps
	$(MAKE) -j$(JOBS) all
	demo/run.sh

# Two instances behind haproxy sharing Redis and PostgreSQL, the same peers
# and build/demo as make demo; foreground, Ctrl-C stops everything.
.PHONY: demo-cluster
demo-cluster: deps
	$(MAKE) -j$(JOBS) all
	demo/cluster.sh run

bench: deps
	$(MAKE) -j$(JOBS) all
	tests/bench/run.sh

# The cost of a change: BASE's bench and this tree's, one after the other.
bench-compare: deps
	BASE=$(BASE) tests/bench/compare.sh

# libFuzzer builds: every source once with clang into build/fuzz/obj, then
# each target linked with -fsanitize=fuzzer against that archive.
FUZZ_BUILD  := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c17 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined -Ilib -Igateway $(PKG_CFLAGS)
FUZZ_OBJS   := $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(LIB_SRCS) $(GW_SRCS))
FUZZ_BINS   := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/libfuzzdz.a: $(FUZZ_OBJS)
	@rm -f $@; ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libfuzzdz.a
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_BUILD)/libfuzzdz.a $(PKG_LIBS) -lev -lm -o $@
# The PKI targets check answers against a generated fixture (make_pki_corpus.sh).
$(FUZZ_BUILD)/fuzz_ocsp_response $(FUZZ_BUILD)/fuzz_tsp_response: tests/fuzz/pki_fixture.h

# Each target runs FUZZ_SECONDS (default 30) from its committed corpus.
fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); c=$${n#fuzz_}; \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$c; \
	  echo "== $$n ($${FUZZ_SECONDS:-30} s)"; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-30} -max_len=65536 -print_final_stats=0 \
	     $(FUZZ_BUILD)/corpus-$$c tests/fuzz/corpus/$$c 2>&1 | tail -3 || exit 1; \
	done

# Layout and dependencies: the arrows between folders (tools/layers.conf)
# are checked on the includes and on the built objects.
LINT_SRCS = $(shell find lib gateway peers pkcs11 tests/unit tests/fuzz -name '*.[ch]' | sort)

lint: $(BINS) $(UNITS)
	clang-format --dry-run --Werror $(LINT_SRCS)
	python3 tools/depcheck.py --objdir $(BUILD)/obj

clean:
	rm -rf build

# ---- install (docs/operations.md "Install") --------------------------------
# PREFIX for programs and data; SYSCONFDIR stays /etc whatever PREFIX is, as
# logrotate, systemd and the example config expect.  Never overwrites a
# darvaza.yaml: the example lands beside it as darvaza.yaml.example.
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
SBINDIR     ?= $(PREFIX)/sbin
DATADIR     ?= $(PREFIX)/share
MANDIR      ?= $(DATADIR)/man
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR ?= $(PREFIX)/lib/tmpfiles.d
INSTALL     ?= install
DIST_SUBST   = sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	-e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DATADIR@|$(DATADIR)|g'
MAN_PAGES   := $(sort $(wildcard dist/man/*.[1-8]))

.PHONY: install uninstall deb
# install builds nothing: it installs what `make` (with the same BUILD) made,
# so `sudo make install` never compiles as root and never relinks a sanitizer
# build without its SANITIZE flags when the commit moved.
INSTALL_BINS := $(BUILD)/darvazad $(BUILD)/darvaza $(BUILD)/darvaza-card
install:
	@for b in $(INSTALL_BINS); do [ -x $$b ] || \
	  { echo "make install: no $$b; run make BUILD=$(BUILD) first" >&2; exit 1; }; done
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/darvaza/web \
	  $(DESTDIR)$(DATADIR)/darvaza/examples/policies $(DESTDIR)$(SYSCONFDIR)/darvaza \
	  $(DESTDIR)$(SYSCONFDIR)/logrotate.d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	  $(DESTDIR)$(TMPFILESDIR) $(foreach s,1 5 8,$(DESTDIR)$(MANDIR)/man$(s))
	$(INSTALL) -m 0755 $(BUILD)/darvazad $(DESTDIR)$(SBINDIR)/darvazad
	$(INSTALL) -m 0755 $(BUILD)/darvaza $(BUILD)/darvaza-card $(DESTDIR)$(BINDIR)/
	$(INSTALL) -m 0644 gateway/web/* $(DESTDIR)$(DATADIR)/darvaza/web/
	$(INSTALL) -m 0644 policies/*.yaml $(DESTDIR)$(DATADIR)/darvaza/examples/policies/
	$(DIST_SUBST) dist/darvaza.yaml.example.in > $(DESTDIR)$(SYSCONFDIR)/darvaza/darvaza.yaml.example
	$(DIST_SUBST) dist/systemd/darvazad.service.in > $(DESTDIR)$(UNITDIR)/darvazad.service
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/darvaza/darvaza.yaml.example $(DESTDIR)$(UNITDIR)/darvazad.service
	$(INSTALL) -m 0644 dist/sysusers.d/darvaza.conf $(DESTDIR)$(SYSUSERSDIR)/darvaza.conf
	$(INSTALL) -m 0644 dist/tmpfiles.d/darvaza.conf $(DESTDIR)$(TMPFILESDIR)/darvaza.conf
	$(INSTALL) -m 0644 dist/logrotate/darvaza $(DESTDIR)$(SYSCONFDIR)/logrotate.d/darvaza
	for m in $(MAN_PAGES); do \
	  $(INSTALL) -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; done

# Removes what install put there, except /etc/darvaza/darvaza.yaml and the
# state: the operator's configuration, accounts and audit history stay.
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/darvazad $(DESTDIR)$(BINDIR)/darvaza $(DESTDIR)$(BINDIR)/darvaza-card \
	  $(DESTDIR)$(SYSCONFDIR)/darvaza/darvaza.yaml.example $(DESTDIR)$(UNITDIR)/darvazad.service \
	  $(DESTDIR)$(SYSUSERSDIR)/darvaza.conf $(DESTDIR)$(TMPFILESDIR)/darvaza.conf \
	  $(DESTDIR)$(SYSCONFDIR)/logrotate.d/darvaza \
	  $(foreach m,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
	rm -rf $(DESTDIR)$(DATADIR)/darvaza

# The package is built from a copy of the tree (dpkg-buildpackage writes its
# results into the parent directory); the .deb lands in build/deb/.
deb:
	rm -rf build/deb && mkdir -p build/deb/src
	git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t build/deb/src
	cp VERSION build/deb/src/
	cd build/deb/src && dpkg-buildpackage -us -uc -b

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
