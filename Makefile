# warden - plain GNU make (DESIGN.md §8, CONVENTIONS.md §9).
# Objects go to build/ (build/san for the ASan+UBSan build); the binary
# is src/warden. Everything but DAEMON_SRC (the files that call
# libmilter or the clock) builds into libwarden.a, which the unit tests
# and `warden explain` use.

CC	?= gcc
PREFIX	?= /usr/local
PKGS	:= libconfig libpcre2-8 hiredis openssl
CFLAGS_WARN := -std=c11 -Wall -Wextra -Werror -Wformat=2 -Wshadow \
	-Wstrict-prototypes -Wold-style-definition -Wvla
CFLAGS	?= -O2 -g
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
MILTER_LIBS = $(shell pkg-config --libs milter 2>/dev/null || echo -lmilter)
CMOCKA_LIBS = $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
ALL_CFLAGS = $(CFLAGS_WARN) $(CFLAGS) -D_GNU_SOURCE -pthread -Isrc $(PKG_CFLAGS)
LDLIBS	= $(PKG_LIBS) -pthread

SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

B	?= build
DAEMON_SRC := src/main.c $(wildcard src/milter.c src/daemon.c src/snap.c \
	src/store_timed.c)
LIB_SRC	:= $(filter-out $(DAEMON_SRC),$(wildcard src/*.c))
LIB_OBJ	:= $(LIB_SRC:src/%.c=$(B)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:src/%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
BENCH_SRC := $(wildcard tests/bench/bench_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_CC	?= clang
FUZZ_FLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
	-fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 60
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)

.PHONY: all deps run test test-unit test-golden test-milter test-mta san \
	bench fuzz fuzz-bins install uninstall clean unit-bins

all: src/warden

deps:
	@tests/lib/deps.sh

$(B)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(B)/libwarden.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

ifeq ($(B),build)
src/warden: $(DAEMON_OBJ) $(B)/libwarden.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(DAEMON_OBJ) $(B)/libwarden.a $(LDLIBS) $(MILTER_LIBS)
else
$(B)/warden: $(DAEMON_OBJ) $(B)/libwarden.a
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $(DAEMON_OBJ) $(B)/libwarden.a $(LDLIBS) $(MILTER_LIBS)
endif

$(B)/tests/%: tests/unit/%.c $(B)/libwarden.a $(wildcard tests/unit/*.h)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(B)/libwarden.a $(LDLIBS) $(CMOCKA_LIBS)

$(B)/bench/%: tests/bench/%.c $(B)/libwarden.a
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(B)/libwarden.a $(LDLIBS)

# The milter-protocol load generator plays the MTA: no libmilter, no
# libwarden. The null milter is its libmilter baseline (tests/load, bench).
LOAD_BIN := build/bench/miltergen build/bench/nullmilter
build/bench/miltergen: tests/bench/miltergen.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_WARN) $(CFLAGS) -D_GNU_SOURCE -o $@ $<

build/bench/nullmilter: tests/bench/nullmilter.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_WARN) $(CFLAGS) -pthread -o $@ $< $(MILTER_LIBS) \
	    $(shell pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)

unit-bins: $(UNIT_BIN)

# libFuzzer targets: the library is rebuilt with clang in build/fuzz,
# once (a stamp, so that make -j does not start one sub-make a target).
build/fuzz/lib.stamp: $(LIB_SRC) $(wildcard src/*.h)
	@$(MAKE) --no-print-directory B=build/fuzz CC=$(FUZZ_CC) \
	    CFLAGS="$(FUZZ_FLAGS)" \
	    build/fuzz/libwarden.a
	@touch $@

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/lib.stamp
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -std=c11 -D_GNU_SOURCE \
	    -Isrc $(PKG_CFLAGS) -o $@ $< build/fuzz/libwarden.a $(LDLIBS)

fuzz-bins: $(FUZZ_BIN)

# make fuzz FUZZ_SECONDS=N: each target for N seconds from its corpus.
fuzz: deps fuzz-bins
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# make fuzz-long [FUZZ_RUNS=N]: each target for N executions, one at a
# time under nice 19 (issue #8 asks 10 million before it is resolved).
FUZZ_RUNS ?= 10000000
.PHONY: fuzz-long
fuzz-long: deps fuzz-bins
	@tests/fuzz/long.sh $(FUZZ_RUNS) $(FUZZ_BIN)

run: deps src/warden
	@src/warden check -c etc/warden.conf >/dev/null || exit 1
	@echo "warden: serving etc/warden.conf on $$(sed -n 's/^ *socket *= *"\([^"]*\)".*/\1/p' etc/warden.conf | head -1) (Ctrl-C stops)"
	@echo "  Postfix main.cf: smtpd_milters = inet:127.0.0.1:8890"
	@echo "                   milter_default_action = tempfail"
	@echo "  decisions and stats go to syslog (facility mail); daemon.log = \"stderr\" shows them here"
	src/warden run -c etc/warden.conf

# Every suite; the last line is "N passed, N failed, N skipped".
test: deps
	@$(MAKE) --no-print-directory all unit-bins $(LOAD_BIN)
	@$(MAKE) --no-print-directory B=build/san CFLAGS="$(SAN_FLAGS)" unit-bins build/san/warden
	@$(MAKE) --no-print-directory fuzz-bins
	@tests/lib/runner.sh all

test-unit: unit-bins
	@tests/lib/runner.sh unit

test-golden: all
	@tests/lib/runner.sh golden

san:
	@$(MAKE) --no-print-directory B=build/san CFLAGS="$(SAN_FLAGS)" unit-bins build/san/warden
	@tests/lib/runner.sh san

bench: deps all $(BENCH_BIN) $(LOAD_BIN)
	@tests/bench/run.sh

# make install [PREFIX=/usr/local] [DESTDIR=] [SYSTEMD_UNITDIR=...]: the
# binary, man pages and unit under PREFIX; the config always in
# /etc/warden (where the unit and the man pages look). Existing config and
# rule files are never overwritten: an upgrade keeps the admin's edits.
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
CONFDIR	?= /etc/warden
SYSTEMD_UNITDIR ?= /lib/systemd/system
INST	:= build/install
CONF_FILES := $(wildcard rules/*.rules rules/*.map)
MAN_PAGES := $(wildcard man/*.5 man/*.8)

# The sample config as a package ships it: rules beside it, the daemon as
# user "warden", a unix socket in the unit's RuntimeDirectory. Each edit
# is checked, so a change to etc/warden.conf that defeats one fails here
# instead of installing the repository's development values.
$(INST)/warden.conf: etc/warden.conf Makefile
	@mkdir -p $(@D)
	sed -e 's|"\.\./rules/|"rules/|' \
	    -e 's|^\( *user *= *\)"nobody"|\1"warden"|' \
	    -e 's|^\( *socket *= *\)"inet:8890@127\.0\.0\.1"|\1"unix:/run/warden/warden.sock"|' \
	    -e 's|^\( *\)# *\(socket_mode *= *"0660";\)|\1\2|' $< >$@.tmp
	@for re in '"rules/\*\.rules"' '^ *user *= *"warden"' \
	    '^ *socket *= *"unix:/run/warden/warden\.sock"' \
	    '^ *socket_mode *= *"0660"'; do \
		grep -q "$$re" $@.tmp || { rm -f $@.tmp; echo "install:" \
		    "etc/warden.conf no longer has what the install edits" \
		    "expect ($$re): update the Makefile" >&2; exit 1; }; \
	done
	@mv $@.tmp $@

install: all $(INST)/warden.conf
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(CONFDIR)/rules \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)
	install -m 0755 src/warden $(DESTDIR)$(SBINDIR)/warden
	sed 's|/usr/local/sbin/|$(SBINDIR)/|g' contrib/systemd/warden.service \
	    >$(DESTDIR)$(SYSTEMD_UNITDIR)/warden.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNITDIR)/warden.service
	@set -e; for f in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${f##*.}; \
		echo "install -m 0644 $$f $$d/"; \
		install -d $$d; install -m 0644 $$f $$d/; \
	done
	@set -e; for f in $(INST)/warden.conf $(CONF_FILES); do \
		case $$f in rules/*) d=rules/ ;; *) d= ;; esac; \
		d=$(DESTDIR)$(CONFDIR)/$$d$${f##*/}; \
		if [ -e "$$d" ]; then echo "install: $$d exists, kept"; \
		else echo "install -m 0644 $$f $$d"; install -m 0644 $$f $$d; fi; \
	done
	@if [ -z "$(DESTDIR)" ] && ! getent passwd warden >/dev/null; then \
		echo "install: now create the user warden runs as:" \
		    "adduser --system --group --no-create-home" \
		    "--home /nonexistent warden"; fi

# Removes what install put there, except config files that differ from
# what install writes now (the admin's edits, or an older version's
# defaults): those are kept and named.
uninstall: $(INST)/warden.conf
	rm -f $(DESTDIR)$(SBINDIR)/warden \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/warden.service \
	    $(foreach f,$(MAN_PAGES),$(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(f)))/$(notdir $(f)))
	@for f in $(INST)/warden.conf $(CONF_FILES); do \
		case $$f in rules/*) d=rules/ ;; *) d= ;; esac; \
		d=$(DESTDIR)$(CONFDIR)/$$d$${f##*/}; \
		[ -e "$$d" ] || continue; \
		if cmp -s "$$f" "$$d"; then echo "rm -f $$d"; rm -f "$$d"; \
		else echo "uninstall: $$d was changed, kept"; fi; \
	done
	@rmdir $(DESTDIR)$(CONFDIR)/rules $(DESTDIR)$(CONFDIR) 2>/dev/null || true

clean:
	rm -rf build src/warden

-include $(LIB_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d)
