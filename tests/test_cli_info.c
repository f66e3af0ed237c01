/*
 * test_cli_info.c - `digitnet info` on the real data, on a corrupted copy
 * and with bad flags: output, one error line, exit codes 0, 1 and 2.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char out[16384];

static void must_contain(const char *text, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("output lacks '%s':\n%s", needle, text);
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

static void test_info_mnist(void **state)
{
    (void)state;
    t_need_mnist();
    int rc = t_run(out, sizeof out, "info --data '%s'", t_mnist_dir());
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    must_contain(out, "train   60000  1x28x28      0.1307     0.3081");
    must_contain(out, "test    10000  1x28x28      0.1325     0.3105");
    /* Label counts of class 1 and 5 in both splits. */
    must_contain(out, "\n1               6742   1135\n");
    must_contain(out, "\n5               5421    892\n");
    must_contain(out, "total          60000  10000");
    must_contain(out, "(x/255 - 0.1307) / 0.3081");
}

static void test_info_fashion(void **state)
{
    (void)state;
    t_need_fashion();
    int rc = t_run(out, sizeof out, "info --dataset fashion");
    if (rc != 0)
        fail_msg("exit %d:\n%s", rc, out);
    must_contain(out, "fashion in /usr/share/datasets/fashion-mnist");
    must_contain(out, "\n0 T-shirt/top   6000   1000\n");
    must_contain(out, "\n9 Ankle boot    6000   1000\n");
    must_contain(out, "(x/255 - 0.2860) / 0.3530");
}

static void test_info_corrupt(void **state)
{
    (void)state;
    t_need_mnist();
    /* A copy of MNIST whose training labels hold a 10: images linked,
     * labels rewritten. */
    char dir[512], src[1024], dst[1024], cwd[512];
    t_tmppath(dir, sizeof dir, "corrupt-mnist");
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_non_null(getcwd(cwd, sizeof cwd));
    static const char *const images[2] = {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"};
    for (int i = 0; i < 2; i++) {
        const char *base = t_mnist_dir();
        snprintf(src, sizeof src, "%s%s%s/%s", base[0] == '/' ? "" : cwd,
                 base[0] == '/' ? "" : "/", base, images[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, images[i]);
        assert_int_equal(symlink(src, dst), 0);
    }
    static const char *const labels[2] = {"train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"};
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/%s", t_mnist_dir(), labels[i]);
        size_t size;
        char *data = t_read_file(src, &size);
        assert_non_null(data);
        if (i == 0)
            data[8 + 100] = 10;
        snprintf(dst, sizeof dst, "%s/%s", dir, labels[i]);
        t_write_file(dst, data, size);
        free(data);
    }
    int rc = t_run(out, sizeof out, "info --data '%s'", dir);
    assert_int_equal(rc, 1);
    assert_int_equal(count_lines(out), 1);
    must_contain(out, "digitnet: ");
    must_contain(out, "train-labels-idx1-ubyte: offset 108: label 10 of item 100");

    /* A missing directory: one line, with what to do. */
    rc = t_run(out, sizeof out, "info --data '%s/nowhere'", dir);
    assert_int_equal(rc, 1);
    assert_int_equal(count_lines(out), 1);
    must_contain(out, "no such data directory");
    must_contain(out, "make data");
}

static void test_info_usage(void **state)
{
    (void)state;
    assert_int_equal(t_run(out, sizeof out, "info --bogus"), 2);
    must_contain(out, "unknown option '--bogus'");
    assert_int_equal(t_run(out, sizeof out, "info --dataset cifar"), 2);
    must_contain(out, "unknown dataset 'cifar'");
    assert_int_equal(t_run(out, sizeof out, "info --data"), 2);
    assert_int_equal(t_run(out, sizeof out, "info extra"), 2);
    assert_int_equal(t_run(out, sizeof out, "info --help"), 0);
    must_contain(out, "usage: digitnet info");
    must_contain(out, "examples:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_mnist),
        cmocka_unit_test(test_info_fashion),
        cmocka_unit_test(test_info_corrupt),
        cmocka_unit_test(test_info_usage),
    };
    return cmocka_run_group_tests_name("cli_info", tests, NULL, NULL);
}
