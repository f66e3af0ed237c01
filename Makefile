# digitnet - build, test, demo, bench.
#
#   make          build ./digitnet and build/libdigitnet.a
#   make test     install what is missing, fetch MNIST, run every test
#                 (once normally with -Werror, once under ASan+UBSan)
#   make demo     install, fetch, build, train, evaluate, predict, draw
#   make bench    benchmarks (with PyTorch side by side when installed)
#   make fuzz     every fuzz target for SECONDS seconds (default 60) each
#   make check-memory   a short train/eval/predict/show/report under valgrind
#   make clean

CC      ?= cc
OPT     ?= -O2
WARN    := -Wall -Wextra -Wpedantic -Wshadow
PKGS    := zlib jansson stb libdeflate libmicrohttpd
CPPFLAGS += -Iinclude -Isrc -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
CFLAGS  ?= $(OPT) -g
override CFLAGS += -std=c17 $(WARN) -pthread
# Asked of pkg-config when a recipe first needs them, not when make starts:
# `make demo` and `make test` install the packages (scripts/install-deps)
# in the same run, and a value read before that would be empty on a bare
# machine. The targets that build after installing also start a new make.
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS) 2>/dev/null))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS) 2>/dev/null))$(PKG_LIBS)
TEST_LIBS  = $(eval TEST_LIBS := $$(shell pkg-config --libs cmocka 2>/dev/null))$(TEST_LIBS)
LDLIBS  += $(PKG_LIBS) -lm -pthread

SRC     := $(sort $(wildcard src/*.c src/*/*.c))
CLI     := $(sort $(wildcard cli/*.c))
TESTS   := $(sort $(wildcard tests/test_*.c))
TSUP    := $(sort $(wildcard tests/support/*.c))
BENCH   := $(sort $(wildcard bench/*.c))
EXAMPLES := $(sort $(wildcard examples/*.c))
# A fuzz target is a file tests/fuzz/fuzz_NAME.c with a seed corpus in
# tests/fuzz/corpus/NAME/; that is all it takes to add one (a target
# needing more libraries adds them to FUZZ_LIBS).
FUZZ    := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ:tests/fuzz/fuzz_%.c=%)
FUZZ_LIBS :=
# Objects of the command a target runs besides the library: fuzz_http
# drives the server's own request handling (libmicrohttpd is in PKGS).
FUZZ_OBJ_http = $(filter $(B)/obj/cli/serve_%.o,$(CLIOBJ)) $(B)/obj/cli/util.o \
    $(B)/obj/gen/web_assets.o

B       := build

# Quiet build lines ("CC src/idx.c"); V=1 shows the full commands.
ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-4s %s\n'
endif
OBJ     := $(SRC:%.c=$(B)/obj/%.o)
CLIOBJ  := $(CLI:%.c=$(B)/obj/%.o)
TSUPOBJ := $(TSUP:%.c=$(B)/obj/%.o)
TESTBIN := $(TESTS:tests/%.c=$(B)/tests/%)

.PHONY: all test test-only demo bench bench-bin clean deps data distclean check-pkgs node-deps \
        fuzz fuzz-bin fuzz-corpus check-memory
.DEFAULT_GOAL := all
# Keep object files that only tests use (make would delete them as intermediates).
.SECONDARY:

all: check-pkgs digitnet

# A plain `make` does not install anything; say what is missing instead of
# failing later on a missing header.
check-pkgs:
	@pkg-config --exists $(PKGS) 2>/dev/null || { \
	    echo "make: missing build dependencies (pkg-config: $(PKGS));" \
	         "run 'scripts/install-deps' (or 'make demo' / 'make test', which run it)" >&2; exit 1; }

$(B)/obj/%.o: %.c $(wildcard include/*.h src/*.h src/*/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

# The fast kernels pass 64-byte vectors between inline functions only, and
# need -O3's unrolling to keep them in registers: at -O2 training runs 2.6x
# slower, with the same results bit for bit.
$(B)/obj/src/fast/%.o: override CFLAGS += -Wno-psabi -O3

# The optimizer loops vectorise at -O3 once sqrtf need not set errno; the
# results are the same bits (sqrt is correctly rounded either way).
$(B)/obj/src/optim.o: override CFLAGS += -O3 -fno-math-errno

# The image path's byte loops (grey conversion, ink, resampling bands)
# vectorise at -O3; integer results are the same at any level.
$(B)/obj/src/grey.o $(B)/obj/src/png.o $(B)/obj/src/prep.o $(B)/obj/src/image.o \
    $(B)/obj/src/image_x86.o: \
    override CFLAGS += -O3

$(B)/libdigitnet.a: $(OBJ)
	@mkdir -p $(dir $@)
	$(say) AR $@
	$(Q)rm -f $@ && ar rcs $@ $^

# The page `digitnet serve` embeds: web/* turned into a C array by
# tools/embed.c, so that the binary needs no files at run time (not the
# back-end of the static build, wasm/web.mk).
WEB     := $(filter-out web/backend-wasm.js,$(sort $(wildcard web/*)))
CLIOBJ  += $(B)/obj/gen/web_assets.o

$(B)/tools/embed: tools/embed.c
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS)

$(B)/gen/web_assets.c: $(WEB) $(B)/tools/embed
	@mkdir -p $(dir $@)
	$(say) GEN $@
	$(Q)$(B)/tools/embed $@ $(WEB)

$(B)/obj/gen/web_assets.o: $(B)/gen/web_assets.c cli/serve.h $(wildcard include/*.h)
	@mkdir -p $(dir $@)
	$(say) CC $<
	$(Q)$(CC) $(CPPFLAGS) -Icli $(PKG_CFLAGS) $(CFLAGS) -c $< -o $@

$(B)/digitnet: $(CLIOBJ) $(B)/libdigitnet.a
	$(say) LD $@
	$(Q)$(CC) $(CFLAGS) -o $@ $(CLIOBJ) $(B)/libdigitnet.a $(LDFLAGS) $(LDLIBS)

# The command users run sits at the top of the checkout.
digitnet: $(B)/digitnet
	$(Q)cp $< $@

$(B)/tests/%: tests/%.c $(TSUPOBJ) $(B)/libdigitnet.a tests/support/test.h
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(CPPFLAGS) -Itests/support $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(TSUPOBJ) $(B)/libdigitnet.a $(LDFLAGS) $(LDLIBS) $(TEST_LIBS)

# Set-up that the two README commands do by themselves.
deps:
	@scripts/install-deps

data:
	@scripts/fetch-mnist

# ONNX Runtime for the cross-runtime tests (npm, into tools/node).
node-deps: deps
	@scripts/install-node-deps

# The full test command: set-up, a -Werror build, the suite (with the fuzz
# corpora replayed), the commands under valgrind (scripts/check-memory),
# then the suite once more under AddressSanitizer and
# UndefinedBehaviorSanitizer. The WebAssembly build (make web) is built
# first: the suite runs it too.
test: deps data node-deps
	@$(MAKE) --no-print-directory web-build
	@$(MAKE) --no-print-directory CFLAGS="$(OPT) -g -Werror" B=build/werror test-only
	@scripts/check-memory build/werror/digitnet
	@$(MAKE) --no-print-directory CC=gcc OPT=-O1 \
	    CFLAGS="-O1 -g -Werror -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	    LDFLAGS="-fsanitize=address,undefined" B=build/asan DN_TEST_LABEL=asan test-only

# The examples are built by the tests so that they keep compiling.
$(B)/examples/%: examples/%.c $(B)/libdigitnet.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(B)/libdigitnet.a $(LDFLAGS) $(LDLIBS)

# The fuzz targets without libFuzzer: replay_NAME feeds every file of the
# corpus and of tests/fuzz/crashes/NAME to the target (tests/fuzz/replay.c),
# so that the tests replay them with any compiler, under the sanitizers in
# the asan pass.
REPLAYBIN := $(FUZZ_NAMES:%=$(B)/tests/replay_%)

$(B)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h $(B)/libdigitnet.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(CPPFLAGS) -Itests/fuzz -Icli $(PKG_CFLAGS) $(CFLAGS) -DDN_FUZZ_NAME='"$*"' -o $@ $< \
	    tests/fuzz/replay.c tests/fuzz/fuzz.c $(filter %.o,$^) $(B)/libdigitnet.a $(LDFLAGS) $(LDLIBS) \
	    $(FUZZ_LIBS)

$(B)/tests/replay_http: $(FUZZ_OBJ_http)

test-only: $(B)/digitnet $(TESTBIN) $(REPLAYBIN) $(EXAMPLES:examples/%.c=$(B)/examples/%)
	@DN_TEST_LABEL=$(or $(DN_TEST_LABEL),werror) DN_BIN=$(B)/digitnet tests/run $(TESTBIN) $(REPLAYBIN)

# A new make after the set-up, so that it sees the packages just installed.
demo: deps data
	@$(MAKE) --no-print-directory digitnet
	@scripts/demo

# scripts/bench builds its own -O3 copy (B=build/bench) with bench-bin.
BENCHBIN := $(BENCH:bench/%.c=$(B)/bench/%)

$(B)/bench/%: bench/%.c $(B)/libdigitnet.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(CPPFLAGS) -Itests/support $(PKG_CFLAGS) $(CFLAGS) -o $@ $< $(filter %.o,$^) $(B)/libdigitnet.a $(LDFLAGS) $(LDLIBS)

# The canvas drawings and the frozen pre-byte-pipeline image path it times
# against (tests/support has no cmocka in these two).
$(B)/bench/bench_prep: $(B)/obj/tests/support/canvas.o $(B)/obj/tests/support/prep_before.o

bench-bin: $(B)/digitnet $(BENCHBIN)

# PyTorch (and wrk, Flask) run beside digitnet in the same run, so the
# benchmark installs them as `make test` installs what it needs.
bench: data
	@scripts/install-deps --bench
	@scripts/bench

# libFuzzer (clang) with AddressSanitizer and UndefinedBehaviorSanitizer.
# The library is built with -fsanitize=fuzzer-no-link so that libFuzzer
# sees its coverage; each target links -fsanitize=fuzzer. scripts/fuzz
# runs them one after the other, SECONDS seconds each, on a working copy of
# the corpus in build/fuzz/corpus; crashes go to tests/fuzz/crashes/NAME/.
FUZZ_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZBIN := $(FUZZ_NAMES:%=$(B)/bin/fuzz_%)

$(B)/bin/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.c tests/fuzz/fuzz.h $(B)/libdigitnet.a
	@mkdir -p $(dir $@)
	$(say) LD $@
	$(Q)$(CC) $(CPPFLAGS) -Itests/fuzz -Icli $(PKG_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< \
	    tests/fuzz/fuzz.c $(filter %.o,$^) $(B)/libdigitnet.a $(LDLIBS) $(FUZZ_LIBS)

$(B)/bin/fuzz_http: $(FUZZ_OBJ_http)

fuzz-bin: $(FUZZBIN)

fuzz:
	@scripts/install-deps --fuzz
	@$(MAKE) --no-print-directory CC=clang B=build/fuzz \
	    CFLAGS="$(FUZZ_FLAGS) -fsanitize=fuzzer-no-link" fuzz-bin
	@scripts/fuzz $(or $(SECONDS),60) $(FUZZ_NAMES)

# Regenerates the seed corpora (committed) with tests/fuzz/make_corpus.c.
fuzz-corpus: $(B)/libdigitnet.a
	@mkdir -p $(B)/fuzz
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -o $(B)/fuzz/make_corpus \
	    tests/fuzz/make_corpus.c $(B)/libdigitnet.a $(LDFLAGS) $(LDLIBS)
	@$(B)/fuzz/make_corpus tests/fuzz/corpus

# A short train, eval, predict, show and report under valgrind: no leak,
# no read of uninitialised memory (scripts/check-memory). make test runs
# it on its -Werror build, so CI does.
check-memory: deps data
	@$(MAKE) --no-print-directory $(B)/digitnet
	@scripts/check-memory $(B)/digitnet

clean:
	rm -rf build digitnet

distclean: clean
	rm -rf data/mnist out tools/node/node_modules

include wasm/web.mk
