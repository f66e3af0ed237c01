/*
 * page.c - the opening of the HTML pages of show and report, their
 * pictures, and writing them.
 */
#include "page.h"

void cli_page_open(dn_text *t, const char *title_prefix, const char *name, const char *css)
{
    dn_text_printf(t, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                      "<title>%s", title_prefix);
    dn_text_html(t, name);
    dn_text_printf(t, "</title>\n<style>\n%s</style>\n</head>\n<body>\n", css);
}

int cli_page_write(dn_text *t, const char *dir, char *path, size_t size)
{
    dn_error err = {0};
    dn_text_printf(t, "</body>\n</html>\n");
    snprintf(path, size, "%s/index.html", dir);
    if (t->oom)
        return cli_fail("out of memory writing %s", path);
    if (dn_file_write_atomic(path, t->s, t->len, &err) != DN_OK)
        return cli_fail_err(&err);
    return 0;
}

int cli_grid_png(const char *dir, const char *file, const dn_grid *g, const float *maps,
                 float lo, float hi, dn_colormap cm)
{
    dn_canvas c = {0};
    dn_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = 0;
    if (dn_grid_draw(g, maps, lo, hi, cm, &c, &err) != DN_OK ||
        dn_canvas_write_png(&c, path, &err) != DN_OK)
        rc = cli_fail_err(&err);
    dn_canvas_free(&c);
    return rc;
}
