# web.mk - `make web`: libdigitnet compiled to WebAssembly with Debian's
# emscripten, for pages that run the network in the browser (included by
# the Makefile).
#
#   make web        out/web/digitnet.js + digitnet.wasm (+ digitnet-wasm.js,
#                   the same bytes for file:// pages), and a model file
#
# The library's own src/ files are compiled, none copied: the fast kernels
# take their portable path (GNU C vectors, which -msimd128 makes WebAssembly
# SIMD); the x86 files compile to nothing, as on any other machine. zlib and
# jansson come from Debian's source packages (scripts/build-wasm-deps).

EMCC      ?= emcc
WB        := build/web
WEB_OUT   := out/web
# The trained model the site ships; `make web WEB_MODEL=...` for another.
WEB_MODEL ?= tests/fixtures/mnist-model.safetensors
# emcc runs node with Debian's acorn, which a node from elsewhere finds only
# on this path.
WEB_ENV   := NODE_PATH=/usr/share/nodejs$(if $(NODE_PATH),:$(NODE_PATH))

WEB_CFLAGS := -std=c17 $(WARN) -Werror -O2 -msimd128 -Iinclude -Isrc -I$(WB)/deps/include \
              -I/usr/include/stb -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WEB_OBJ   := $(SRC:%.c=$(WB)/obj/%.o) $(WB)/obj/wasm/dn_wasm.o $(WB)/obj/wasm/stb_impl.o
WEB_DEPS  := $(WB)/deps/lib/libjansson.a $(WB)/deps/lib/libz.a $(WB)/deps/lib/libdeflate.a
WEB_LDFLAGS := -O2 -msimd128 -sMODULARIZE=1 -sEXPORT_NAME=createDigitnet \
               -sALLOW_MEMORY_GROWTH=1 -sENVIRONMENT=web,worker,node \
               -sEXPORTED_FUNCTIONS=_malloc,_free --pre-js wasm/pre.js --post-js wasm/api.js

.PHONY: web web-build

# Set-up first (emscripten is a Debian package), then a new make that sees it.
web: deps
	@$(MAKE) --no-print-directory web-build

web-build: $(WEB_OUT)/digitnet.js $(WEB_OUT)/digitnet-wasm.js $(WEB_OUT)/model.safetensors

# One run builds all three (a stamp, so that make -j runs it once).
$(WB)/deps/built: scripts/build-wasm-deps
	$(Q)$(WEB_ENV) scripts/build-wasm-deps $(WB)/deps && touch $@
$(WEB_DEPS): $(WB)/deps/built ;

$(WB)/obj/%.o: %.c include/digitnet.h $(wildcard src/*.h src/*/*.h) | $(WB)/deps/built
	@mkdir -p $(dir $@)
	$(say) EMCC $<
	$(Q)$(WEB_ENV) $(EMCC) $(WEB_CFLAGS) -c $< -o $@

# As natively: the fast kernels want -O3's unrolling.
$(WB)/obj/src/fast/%.o: WEB_CFLAGS += -O3 -Wno-psabi
# Third-party code, compiled as its authors wrote it.
$(WB)/obj/wasm/stb_impl.o: WEB_CFLAGS += -Wno-everything

$(WEB_OUT)/digitnet.js: $(WEB_OBJ) $(WEB_DEPS) wasm/pre.js wasm/api.js
	@mkdir -p $(dir $@)
	$(say) EMLD $@
	$(Q)$(WEB_ENV) $(EMCC) $(WEB_LDFLAGS) -o $@ $(WEB_OBJ) $(WEB_DEPS)

# The .wasm as a script, for pages opened from file://, where browsers
# refuse to fetch it.
$(WEB_OUT)/digitnet-wasm.js: $(WEB_OUT)/digitnet.js
	$(say) GEN $@
	$(Q){ printf 'var DIGITNET_WASM_BASE64 = "'; base64 -w0 $(WEB_OUT)/digitnet.wasm; \
	      printf '";\n'; } >$@.tmp && mv $@.tmp $@

$(WEB_OUT)/model.safetensors: $(WEB_MODEL)
	@mkdir -p $(dir $@)
	$(Q)cp $< $@
