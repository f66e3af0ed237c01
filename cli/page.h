/*
 * page.h - what the HTML pages of show and report share (cli/page.c): the
 * opening of a page, pictures of grids written next to it, and writing
 * index.html.
 */
#ifndef DN_CLI_PAGE_H
#define DN_CLI_PAGE_H

#include "cli.h"
#include "digitnet_picture.h"

/* Appends a page's opening up to and including <body>: its <title> is
 * title_prefix followed by name (escaped), then the style sheet css. */
void cli_page_open(dn_text *t, const char *title_prefix, const char *name, const char *css);

/* Closes the page (</body></html>) and writes it to dir/index.html
 * atomically; path gets that path. Returns 0, or CLI_EXIT_FAIL after one
 * error line. */
int cli_page_write(dn_text *t, const char *dir, char *path, size_t size);

/* Draws maps (g->n, g->h, g->w) on the lo..hi scale of colour map cm as
 * laid out by g and writes the picture to dir/file. Returns 0, or
 * CLI_EXIT_FAIL after one error line. */
int cli_grid_png(const char *dir, const char *file, const dn_grid *g, const float *maps,
                 float lo, float hi, dn_colormap cm);

#endif
