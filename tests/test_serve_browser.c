/*
 * test_serve_browser.c - the page of `digitnet serve` in a real browser,
 * with the mouse on a laptop-sized window and with touch on a phone-sized
 * screen: runs tests/serve_browser.py (python3-selenium driving Debian's
 * chromium through chromedriver, all installed by scripts/install-deps)
 * and passes on its checks. Screenshots go to out/serve-<label>/.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_page_in_browser(void **state)
{
    (void)state;
    static const char *const need[] = {"/usr/bin/python3", "/usr/bin/chromium",
                                       "/usr/bin/chromedriver"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++)
        if (access(need[i], X_OK) != 0)
            fail_msg("%s is missing: run scripts/install-deps (make test does)", need[i]);
    if (system("/usr/bin/python3 -c 'import selenium' 2>/dev/null") != 0)
        fail_msg("python3-selenium is missing: run scripts/install-deps (make test does)");
    const char *bin = getenv("DN_BIN");
    const char *label = getenv("DN_TEST_LABEL");
    /* It draws MNIST test digits. */
    t_need_mnist();
    char data[1024];
    snprintf(data, sizeof data, "--data '%s'", t_mnist_dir());
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 tests/serve_browser.py --bin '%s' %s --out 'out/serve-%s' 2>&1",
             bin && *bin ? bin : "./digitnet", data, label && *label ? label : "test");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024];
    int passed = 0;
    while (fgets(line, sizeof line, p)) {
        print_message("%s", line);
        passed |= strstr(line, "serve_browser: all passed") != NULL;
    }
    int rc = pclose(p);
    if (rc != 0 || !passed)
        fail_msg("tests/serve_browser.py failed (status %d)", rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_in_browser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
