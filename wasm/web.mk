# web.mk - `make web`: libdigitnet compiled to WebAssembly with Debian's
# emscripten, for pages that run the network in the browser (included by
# the Makefile).
#
#   make web        out/web/: the page of `digitnet serve` (web/, one
#                   source) on the library compiled to WebAssembly
#                   (web/backend-wasm.js over digitnet.js + digitnet.wasm),
#                   a model file and 1,000 MNIST test images; and for pages
#                   opened from file://, where browsers fetch nothing, the
#                   same bytes as scripts (digitnet-wasm.js, digitnet-files.js)
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
web: deps data
	@$(MAKE) --no-print-directory web-build

# The page's files as web/ holds them, but for the back-end it names.
WEB_PAGE  := $(addprefix $(WEB_OUT)/,app.js style.css favicon.svg backend-wasm.js)
# The first images of MNIST's test set, for "Random test digit" and the
# accuracy in the model panel.
WEB_TEST  := $(WEB_OUT)/t10k-images-idx3-ubyte.gz $(WEB_OUT)/t10k-labels-idx1-ubyte.gz
WEB_MNIST ?= data/mnist

web-build: $(WEB_OUT)/digitnet.js $(WEB_OUT)/digitnet-wasm.js $(WEB_OUT)/model.safetensors \
           $(WEB_OUT)/index.html $(WEB_PAGE) $(WEB_TEST) $(WEB_OUT)/digitnet-files.js

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

# The one page source: index.html names the HTTP back-end; here it names
# the WebAssembly one instead, and nothing else changes.
$(WEB_OUT)/index.html: web/index.html
	@mkdir -p $(dir $@)
	$(say) GEN $@
	$(Q)sed 's|<script src="backend-http.js"></script>|<script src="backend-wasm.js"></script>|' $< >$@.tmp && \
	    grep -q '"backend-wasm.js"' $@.tmp && mv $@.tmp $@ || \
	    { rm -f $@.tmp; echo "$<: no <script src=\"backend-http.js\"></script> line to point at backend-wasm.js" >&2; exit 1; }

$(WEB_PAGE): $(WEB_OUT)/%: web/%
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

# The first 1,000 images and labels, with the count in the headers made
# 1,000 (0x3e8); fetch-mnist has checked the files' SHA-256.
$(WEB_OUT)/t10k-images-idx3-ubyte.gz: $(WEB_MNIST)/t10k-images-idx3-ubyte
	@mkdir -p $(dir $@)
	$(say) GEN $@
	$(Q){ printf '\0\0\10\3\0\0\3\350\0\0\0\34\0\0\0\34'; tail -c +17 $< | head -c 784000; } | \
	    gzip -9n >$@.tmp && mv $@.tmp $@
$(WEB_OUT)/t10k-labels-idx1-ubyte.gz: $(WEB_MNIST)/t10k-labels-idx1-ubyte
	@mkdir -p $(dir $@)
	$(say) GEN $@
	$(Q){ printf '\0\0\10\1\0\0\3\350'; tail -c +9 $< | head -c 1000; } | gzip -9n >$@.tmp && mv $@.tmp $@

# The model and the test images as a script, for file:// pages.
$(WEB_OUT)/digitnet-files.js: $(WEB_OUT)/model.safetensors $(WEB_TEST)
	$(say) GEN $@
	$(Q){ printf 'var DIGITNET_FILES = {\n'; for f in $^; do \
	        printf '  "%s": "' "$${f##*/}"; base64 -w0 $$f; printf '",\n'; done; \
	      printf '};\n'; } >$@.tmp && mv $@.tmp $@
