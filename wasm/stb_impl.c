/*
 * stb_impl.c - the code of Debian's stb_image and stb_image_write headers
 * for the WebAssembly build. Natively it comes compiled in Debian's libstb;
 * for WebAssembly the same headers are compiled here with their defaults.
 */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
