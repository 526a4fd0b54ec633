# blast - build, test, demo, install.
#
#   make            build build/blast
#   make test       install what is missing, build, run every test (units, integration, lint)
#   make demo       install what is missing, build, send the example campaign to a local relay
#   make sanitize   the tests again under AddressSanitizer and UBSan (build/sanitize/)
#   make valgrind   the unit tests and one send under valgrind's leak checker
#   make fuzz       install clang, build the libFuzzer harnesses of tests/fuzz/, run each
#                   for FUZZ_SECONDS, two at a time (FUZZ_TARGETS=reply runs one)
#   make fuzz-replay  every committed fuzz input once, without clang (part of test)
#   make bench      the benchmarks of bench/ (not part of test)
#   make container-check  the Dockerfile's steps, run (minutes, Debian's mirror; not part of test)
#   make install PREFIX=/usr/local   (and DESTDIR; make uninstall takes the same)
#   make deps       install the Debian packages the build and tests need (idempotent)

# Tests, the demo and the benchmarks send to fictional domains through relays on
# loopback: blast looks no recipient domain up in DNS for them (docs/campaign.md,
# "Providers"), so that no query leaves the machine. The DNS tests start a server of
# their own on loopback and point blast at it.
export BLAST_DNS_SERVERS ?= off

VERSION  := $(shell cat VERSION)
BUILD    ?= build
PREFIX   ?= /usr/local
CC       ?= cc
PYTHON   := /usr/bin/python3
PKGS     := yaml-0.1 jansson openssl libsodium libidn2 libcurl sqlite3 gmime-3.0 hiredis zlib libcares libpsl

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lcsv -lpthread -lm

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
            -Wmissing-prototypes -Wno-missing-field-initializers \
            -Wno-format-truncation
# OPT, CPPFLAGS, CFLAGS and LDFLAGS are the caller's to set (dpkg-buildflags sets the
# last three for the Debian package: fortified functions, stack protector, full RELRO);
# the project's own flags always apply.
OPT      ?= -O2 -g
ALL_CFLAGS  = $(OPT) -std=gnu11 -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) \
              -DBLAST_VERSION='"$(VERSION)"' -MMD -MP $(SAN) $(CPPFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)
LDLIBS   += $(PKG_LIBS)

ifeq ($(SANITIZE),1)
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif

CORE_SRC := $(sort $(wildcard core/*.c))
CMD_SRC  := $(sort $(wildcard cmd/blast/*.c))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/obj/%.o)
CMD_OBJ  := $(CMD_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_OBJ := $(UNIT_SRC:%.c=$(BUILD)/obj/%.o)
DEPS     := $(CORE_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(BUILD)/obj/bench/render_bench.d \
            $(BUILD)/obj/bench/report_read_bench.d

.PHONY: all test unit integration lint demo deps sanitize valgrind install uninstall clean format \
        container-check \
        bench fuzz fuzz-build fuzz-deps fuzz-replay fuzz-seeds fuzz-merge

all: $(BUILD)/blast

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libblast.a: $(CORE_OBJ)
	$(AR) rcs $@ $^

$(BUILD)/blast: $(CMD_OBJ) $(BUILD)/libblast.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJ) $(BUILD)/libblast.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs criterion 2>/dev/null)

$(BUILD)/render-bench: $(BUILD)/obj/bench/render_bench.o $(BUILD)/libblast.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/report-read-bench: $(BUILD)/obj/bench/report_read_bench.o $(BUILD)/libblast.a
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

# Benchmarks: long, so not part of `make test` or CI (docs/performance.md). Installs
# the peers, runs the micro-benchmarks, then blast and its peers side by side; the
# figures go to $(BUILD)/bench/ (compare.json, table.md, micro.txt, dryrun-1m.json).
bench: all
	bench/peers.sh
	OUT=$(BUILD)/bench bench/micro.sh $(BUILD)
	OUT=$(BUILD)/bench bench/compare.sh $(BUILD)/blast

# The README's test command: installs what it needs, then everything.
test: deps
	$(MAKE) --no-print-directory check-all

.PHONY: check-all
check-all: lint $(BUILD)/blast $(BUILD)/unit-tests
	$(MAKE) --no-print-directory unit fuzz-replay integration

unit: $(BUILD)/unit-tests
	cd tests/unit && ../../$(BUILD)/unit-tests --jobs 2

integration: $(BUILD)/blast
	BLAST=$(abspath $(BUILD)/blast) $(PYTHON) -m unittest discover -s tests/integration -t . -v

lint:
	@scripts/lint.sh

# The Dockerfile's steps, run (tests/integration/test_container.py): with Docker where a
# daemon answers, else each stage in a debootstrap chroot. Minutes and Debian's mirror,
# so not part of test.
container-check: $(BUILD)/blast
	BLAST_CONTAINER_TEST=1 BLAST=$(abspath $(BUILD)/blast) $(PYTHON) -m unittest -v \
		tests.integration.test_container

demo: deps
	$(MAKE) --no-print-directory all
	scripts/demo.sh $(BUILD)

deps:
	@scripts/deps.sh

sanitize: deps
	$(MAKE) --no-print-directory BUILD=build/sanitize SANITIZE=1 OPT="-O1 -g" \
		build/sanitize/blast build/sanitize/unit-tests
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LSAN_OPTIONS=suppressions=$(abspath tests/unit/lsan.supp):print_suppressions=0 \
		$(MAKE) --no-print-directory BUILD=build/sanitize SANITIZE=1 OPT="-O1 -g" unit integration

valgrind: deps $(BUILD)/blast $(BUILD)/unit-tests
	cd tests/unit && valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--trace-children=yes --trace-children-skip='*/dnsmasq' -q ../../$(BUILD)/unit-tests --jobs 1
	BLAST_VALGRIND=1 BLAST=$(abspath $(BUILD)/blast) $(PYTHON) -m unittest -v \
		tests.integration.test_send.SendExample

# ---- fuzzing (docs/testing.md, "Fuzzing") ----------------------------------------------
#
# One harness per parser of untrusted input: tests/fuzz/fuzz_NAME.c. `make fuzz` builds
# them with clang and libFuzzer and runs each FUZZ_SECONDS, FUZZ_JOBS at a time; what
# they add to the corpus goes to $(FUZZ_DIR)/corpus/NAME (never into the repository),
# crashes to $(FUZZ_DIR)/artifacts/NAME, and each run's final statistics to
# $(FUZZ_DIR)/summary.txt. `make fuzz-replay` builds them with gcc, ASan and UBSan and a
# plain main (tests/fuzz/replay.c) and feeds each its committed corpus and regressions.
FUZZ_ALL     := reply session template campaign csv address report classify bounce page \
                jsontape records journal
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 240
FUZZ_JOBS    ?= 2
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS   = -O1 -g -std=gnu11 -D_GNU_SOURCE $(PKG_CFLAGS) -DBLAST_VERSION='"$(VERSION)"' -MMD -MP \
                $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_CORE_OBJ := $(CORE_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS     := $(FUZZ_ALL:%=$(FUZZ_DIR)/fuzz-%)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

$(FUZZ_DIR)/libblast.a: $(FUZZ_CORE_OBJ)
	$(AR) rcs $@ $^

$(FUZZ_DIR)/fuzz-%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_DIR)/obj/tests/fuzz/fuzz.o \
		$(FUZZ_DIR)/libblast.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS) -ldl

fuzz-deps:
	@scripts/deps.sh --fuzz

fuzz-build: fuzz-deps
	$(MAKE) --no-print-directory $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz-%)

fuzz: fuzz-build
	scripts/fuzz.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

# The committed seeds: tests/fuzz/seeds.py makes inputs from the project's test data,
# and libFuzzer keeps those that add coverage (-merge=1) in tests/fuzz/corpus/NAME.
fuzz-seeds: fuzz-build
	rm -rf $(FUZZ_DIR)/seeds
	$(PYTHON) tests/fuzz/seeds.py $(FUZZ_DIR)/seeds
	for t in $(FUZZ_TARGETS); do \
		mkdir -p tests/fuzz/corpus/$$t && \
		$(FUZZ_DIR)/fuzz-$$t -merge=1 tests/fuzz/corpus/$$t $(FUZZ_DIR)/seeds/$$t || exit 1; \
	done

# After a run: what it found that adds coverage joins the committed corpus (to review
# and commit by hand).
fuzz-merge: fuzz-build
	for t in $(FUZZ_TARGETS); do \
		mkdir -p tests/fuzz/corpus/$$t && \
		$(FUZZ_DIR)/fuzz-$$t -merge=1 tests/fuzz/corpus/$$t $(FUZZ_DIR)/corpus/$$t || exit 1; \
	done

# The replay: the same harnesses, built by gcc with the sanitizers and replay.c's main.
REPLAY_DIR     := $(BUILD)/replay
REPLAY_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
REPLAY_CFLAGS   = -O1 -g -std=gnu11 -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) -DBLAST_VERSION='"$(VERSION)"' \
                  -MMD -MP $(REPLAY_SAN)
REPLAY_CORE_OBJ := $(CORE_SRC:%.c=$(REPLAY_DIR)/obj/%.o)
REPLAY_BINS     := $(FUZZ_ALL:%=$(REPLAY_DIR)/fuzz-%)
DEPS            += $(wildcard $(FUZZ_DIR)/obj/core/*.d $(FUZZ_DIR)/obj/tests/fuzz/*.d \
                   $(REPLAY_DIR)/obj/core/*.d $(REPLAY_DIR)/obj/tests/fuzz/*.d)

# the harnesses' objects are kept, like the others, so a rebuild compiles only what changed
.PRECIOUS: $(FUZZ_DIR)/obj/%.o $(REPLAY_DIR)/obj/%.o

$(REPLAY_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REPLAY_CFLAGS) -c $< -o $@

$(REPLAY_DIR)/libblast.a: $(REPLAY_CORE_OBJ)
	$(AR) rcs $@ $^

$(REPLAY_DIR)/fuzz-%: $(REPLAY_DIR)/obj/tests/fuzz/fuzz_%.o $(REPLAY_DIR)/obj/tests/fuzz/fuzz.o \
		$(REPLAY_DIR)/obj/tests/fuzz/replay.o $(REPLAY_DIR)/libblast.a
	$(CC) $(REPLAY_SAN) -o $@ $^ $(LDLIBS) -ldl

# Each committed input once; any crash, leak, UBSan report or hang fails (a few seconds).
fuzz-replay: $(REPLAY_BINS)
	@for t in $(FUZZ_ALL); do \
		dirs=""; \
		for d in tests/fuzz/corpus/$$t tests/fuzz/regressions/$$t; do \
			[ -d $$d ] && dirs="$$dirs $$d"; \
		done; \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
			timeout 120 $(REPLAY_DIR)/fuzz-$$t $$dirs || { echo "fuzz-replay: $$t failed" >&2; exit 1; }; \
	done

# ---- install ----------------------------------------------------------------------------
#
# The program, its manual pages, the bash and zsh completions, the documentation and the
# example campaign, under PREFIX (and DESTDIR, for a package's staging tree). Each place
# may be set on its own. zsh's: Debian's zsh reads /usr/share/zsh/vendor-completions for
# packages and /usr/local/share/zsh/site-functions for the rest.
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/blast
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/share/zsh/vendor-completions,$(PREFIX)/share/zsh/site-functions)
INSTALL     ?= install
MAN1        := man/blast.1
MAN5        := man/blast-campaign.5 man/blast-report.5
DOCS        := README.md NEWS $(wildcard docs/*.md) docs/report.schema.json docs/report-page.png
EXAMPLES    := campaigns/example.yml campaigns/recipients.csv campaigns/unsubscribed.txt
TEMPLATES   := $(wildcard templates/*)

install: $(BUILD)/blast
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
		$(DESTDIR)$(DOCDIR)/examples/campaigns $(DESTDIR)$(DOCDIR)/examples/templates
	$(INSTALL) -m 0755 $(BUILD)/blast $(DESTDIR)$(BINDIR)/blast
	$(INSTALL) -m 0644 $(MAN1) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 completions/blast.bash $(DESTDIR)$(BASHCOMPDIR)/blast
	$(INSTALL) -m 0644 completions/_blast $(DESTDIR)$(ZSHCOMPDIR)/_blast
	$(INSTALL) -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	$(INSTALL) -m 0644 $(EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/campaigns/
	$(INSTALL) -m 0644 $(TEMPLATES) $(DESTDIR)$(DOCDIR)/examples/templates/

# Removes what install put there, and the directories of blast's own (DOCDIR); shared
# directories (bin, man1, the completions' directories) stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/blast $(DESTDIR)$(BASHCOMPDIR)/blast $(DESTDIR)$(ZSHCOMPDIR)/_blast
	rm -f $(MAN1:man/%=$(DESTDIR)$(MANDIR)/man1/%) $(MAN5:man/%=$(DESTDIR)$(MANDIR)/man5/%)
	rm -rf $(DESTDIR)$(DOCDIR)

format:
	clang-format -i core/*.c core/*.h cmd/blast/*.c cmd/blast/*.h tests/unit/*.c tests/unit/*.h \
		tests/fuzz/*.c tests/fuzz/*.h

clean:
	rm -rf build

-include $(DEPS)
