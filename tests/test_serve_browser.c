/*
 * test_serve_browser.c - the page in a real browser, with the mouse on a
 * laptop-sized window and with touch on a phone-sized screen: as `digitnet
 * serve` serves it (tests/serve_browser.py; screenshots in
 * out/serve-<label>/), and as the static build of `make web` (out/web/, the
 * library compiled to WebAssembly as its back-end) served by a static file
 * server and opened from file:// (tests/web_browser.py; screenshots in
 * out/web-<label>/ and out/web-page.png). python3-selenium drives Debian's
 * chromium through chromedriver, all installed by scripts/install-deps; the
 * scripts' checks decide.
 */
#include "test.h"
#include "runtimes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *bin(void)
{
    const char *b = getenv("DN_BIN");
    return b && *b ? b : "./digitnet";
}

static const char *label(void)
{
    const char *l = getenv("DN_TEST_LABEL");
    return l && *l ? l : "test";
}

static void need_browser(void)
{
    static const char *const need[] = {"/usr/bin/python3", "/usr/bin/chromium",
                                       "/usr/bin/chromedriver"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (access(need[i], X_OK) != 0)
            fail_msg("%s is missing: run scripts/install-deps (make test does)", need[i]);
    if (system("/usr/bin/python3 -c 'import selenium' 2>/dev/null") != 0)
        fail_msg("python3-selenium is missing: run scripts/install-deps (make test does)");
}

/* Runs tests/NAME.py with args, showing its lines; it passes when it says
 * "NAME: all passed" and exits 0. */
static void run_script(const char *name, const char *args)
{
    char cmd[4096], passed_line[64];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/%s.py %s 2>&1", name, args);
    snprintf(passed_line, sizeof passed_line, "%s: all passed", name);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024];
    int passed = 0;
    while (fgets(line, sizeof line, p)) {
        print_message("%s", line);
        passed |= strstr(line, passed_line) != NULL;
    }
    int rc = pclose(p);
    if (rc != 0 || !passed)
        fail_msg("tests/%s.py failed (status %d)", name, rc);
}

static void test_page_in_browser(void **state)
{
    (void)state;
    need_browser();
    /* It draws MNIST test digits. */
    t_need_mnist();
    char args[2048];
    snprintf(args, sizeof args, "--bin '%s' --data '%s' --out 'out/serve-%s'", bin(),
             t_mnist_dir(), label());
    run_script("serve_browser", args);
}

static void test_static_page_in_browser(void **state)
{
    (void)state;
    need_browser();
    const char *web = getenv("DN_WEB_DIR");
    web = web && *web ? web : "out/web";
    char wasm[1024];
    snprintf(wasm, sizeof wasm, "%s/digitnet.wasm", web);
    if (access(wasm, R_OK) != 0)
        t_missing("the static build is missing (make web builds out/web)");
    /* The server it compares the answers with reads MNIST when it is
     * there, as in the other test. */
    char args[2048], data[1100] = "";
    if (t_have_mnist())
        snprintf(data, sizeof data, "--data '%s'", t_mnist_dir());
    snprintf(args, sizeof args,
             "--bin '%s' %s --web '%s' --out 'out/web-%s' --shot out/web-page.png", bin(), data,
             web, label());
    run_script("web_browser", args);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_in_browser),
        cmocka_unit_test(test_static_page_in_browser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
