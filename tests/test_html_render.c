/*
 * test_html_render.c - the pages of `digitnet show` and `digitnet report`
 * rendered by headless Chromium: every picture loads and is shown at its
 * natural size, every SVG chart is laid out, nothing is wider than a
 * window. A copy of each page gets a small script that writes what it
 * found into the DOM, which --dump-dom prints. Skips without Chromium.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[1 << 16];

static const char *chromium(void)
{
    static const char *const names[] = {"/usr/bin/chromium", "/usr/bin/chromium-browser",
                                        "/usr/bin/google-chrome"};
    const char *env = getenv("DN_CHROMIUM");
    if (env && *env)
        return access(env, X_OK) == 0 ? env : NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (access(names[i], X_OK) == 0)
            return names[i];
    return NULL;
}

static const char *checker =
    "<script>\n"
    "window.addEventListener('load', function () {\n"
    "  var im = document.images, ok = 0, exact = 0;\n"
    "  for (var i = 0; i < im.length; i++) {\n"
    "    if (im[i].complete && im[i].naturalWidth > 0) ok++;\n"
    "    if (im[i].naturalWidth == im[i].width && im[i].naturalHeight == im[i].height) exact++;\n"
    "  }\n"
    "  var sv = document.querySelectorAll('svg'), drawn = 0;\n"
    "  for (var j = 0; j < sv.length; j++) {\n"
    "    var r = sv[j].getBoundingClientRect();\n"
    "    if (r.width > 100 && r.height > 100) drawn++;\n"
    "  }\n"
    "  var p = document.createElement('p');\n"
    "  p.id = 'dn-check';\n"
    "  p.textContent = 'DN-CHECK images ' + ok + '/' + im.length + ' exact ' + exact +\n"
    "    ' svg ' + drawn + '/' + sv.length + ' width ' +\n"
    "    document.documentElement.scrollWidth + ' END';\n"
    "  document.body.appendChild(p);\n"
    "});\n"
    "</script>\n";

typedef struct check {
    int images, total, exact, svg, svgs, width;
} check;

/* Renders dir/index.html (through a copy with the checker) and returns
 * what the checker saw. */
static check render(const char *browser, const char *dir)
{
    char page[1024], copy[1024], profile[1024], dom[1024], cmd[8192];
    snprintf(page, sizeof page, "%s/index.html", dir);
    snprintf(copy, sizeof copy, "%s/check.html", dir);
    size_t n;
    char *html = t_read_file(page, &n);
    if (!html)
        fail_msg("no page %s", page);
    char *end = strstr(html, "</body>");
    assert_non_null(end);
    FILE *f = fopen(copy, "w");
    assert_non_null(f);
    fwrite(html, 1, (size_t)(end - html), f);
    fputs(checker, f);
    fputs(end, f);
    assert_int_equal(fclose(f), 0);
    free(html);

    snprintf(profile, sizeof profile, "%s/chromium-profile", dir);
    snprintf(dom, sizeof dom, "%s/dom.txt", dir);
    snprintf(cmd, sizeof cmd,
             "HOME='%s' timeout 90 '%s' --headless --no-sandbox --disable-gpu --disable-quic "
             "--no-first-run --disable-background-networking --disable-component-update "
             "--disable-sync --user-data-dir='%s' --window-size=1280,1024 "
             "--virtual-time-budget=10000 --dump-dom 'file://%s' >'%s' 2>/dev/null",
             dir, browser, profile, copy, dom);
    int rc = system(cmd);
    char *text = t_read_file(dom, NULL);
    if (!text)
        fail_msg("chromium wrote nothing (status %d)", rc);
    check c = {-1, -1, -1, -1, -1, -1};
    char *m = strstr(text, "<p id=\"dn-check\">");
    if (!m || sscanf(m, "<p id=\"dn-check\">DN-CHECK images %d/%d exact %d svg %d/%d width %d", &c.images,
                     &c.total, &c.exact, &c.svg, &c.svgs, &c.width) != 6)
        fail_msg("no checker result in the DOM of %s (status %d):\n%.1500s", copy, rc, text);
    free(text);
    print_message("%s: %d/%d pictures loaded, %d at natural size, %d/%d charts laid out, %d px "
                  "wide\n", page, c.images, c.total, c.exact, c.svg, c.svgs, c.width);
    return c;
}

/* The committed trained model, or an untrained one made here (the pages
 * only need some model). */
static const char *some_model(char *buf, size_t size)
{
    const char *p = getenv("DIGITNET_TEST_MODEL");
    p = p && *p ? p : "tests/fixtures/mnist-model.safetensors";
    struct stat st;
    if (stat(p, &st) == 0)
        return p;
    dn_error err = {0};
    dn_model *m = dn_model_new(NULL, (dn_shape){1, 28, 28}, 3, &err);
    assert_non_null(m);
    t_tmppath(buf, size, "untrained.safetensors");
    assert_int_equal(dn_model_save(m, buf, NULL, &err), DN_OK);
    dn_model_free(m);
    return buf;
}

static void test_show_page(void **state)
{
    (void)state;
    const char *browser = chromium();
    if (!browser) {
        print_message("no chromium, skipping\n");
        skip();
    }
    char mbuf[512], dir[512];
    const char *model = some_model(mbuf, sizeof mbuf);
    t_tmppath(dir, sizeof dir, "show");
    int rc = t_run(out, sizeof out, "show --model '%s' tests/fixtures/digits/5-blue-ink.png "
                   "--out '%s'", model, dir);
    if (rc != 0)
        fail_msg("show: exit %d\n%s", rc, out);
    check c = render(browser, dir);
    /* input, conv1 + ReLU, its filters, pool1, conv2 + ReLU, its filters,
     * pool2, flatten, fc1 + ReLU; the log-probabilities as a chart. */
    assert_int_equal(c.total, 9);
    assert_int_equal(c.images, 9);
    assert_int_equal(c.exact, 9);
    assert_int_equal(c.svgs, 1);
    assert_int_equal(c.svg, 1);
    assert_true(c.width <= 1280);
}

static void test_report_page(void **state)
{
    (void)state;
    const char *browser = chromium();
    if (!browser) {
        print_message("no chromium, skipping\n");
        skip();
    }
    t_need_mnist();
    char mbuf[512], dir[512], metrics[512];
    const char *model = some_model(mbuf, sizeof mbuf);
    t_tmppath(metrics, sizeof metrics, "run.metrics.jsonl");
    const char lines[] =
        "{\"epoch\":1,\"lr\":1.0,\"train_loss\":0.33,\"test_loss\":0.087,\"test_acc\":0.972,"
        "\"test_acc_se\":0.0016,\"seconds\":60.1,\"images_per_s\":998,\"split\":\"test\"}\n"
        "{\"epoch\":2,\"lr\":0.7,\"train_loss\":0.12,\"test_loss\":0.055,\"test_acc\":0.982,"
        "\"test_acc_se\":0.0013,\"seconds\":59.0,\"images_per_s\":1017,\"split\":\"test\"}\n"
        "{\"epoch\":3,\"lr\":0.49,\"train_loss\":0.09,\"test_loss\":0.044,\"test_acc\":0.986,"
        "\"test_acc_se\":0.0012,\"seconds\":58.2,\"images_per_s\":1031,\"split\":\"test\"}\n";
    t_write_file(metrics, lines, sizeof lines - 1);
    t_tmppath(dir, sizeof dir, "report");
    int rc = t_run(out, sizeof out, "report --model '%s' --metrics '%s' --data '%s' --limit 1000 "
                   "--top 6 --out '%s'", model, metrics, t_mnist_dir(), dir);
    if (rc != 0)
        fail_msg("report: exit %d\n%s", rc, out);
    check c = render(browser, dir);
    /* Six mistakes (a trained model makes 10 or more in 1,000), three
     * charts. */
    assert_int_equal(c.total, 6);
    assert_int_equal(c.images, c.total);
    assert_int_equal(c.exact, c.total);
    assert_int_equal(c.svgs, 3);
    assert_int_equal(c.svg, 3);
    assert_true(c.width <= 1280);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_page),
        cmocka_unit_test(test_report_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
