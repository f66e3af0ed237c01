/*
 * runtimes.h - what the tests that run digitnet's models in other runtimes
 * (ONNX Runtime, the WebAssembly build, the HTTP server) share: the same
 * MNIST inputs, external commands, and comparing log-probabilities.
 */
#ifndef DN_TEST_RUNTIMES_H
#define DN_TEST_RUNTIMES_H

#include "test.h"

/* A tool the test needs is missing (why says which and how to get it):
 * the test is skipped with that reason, or fails when CI is set, because
 * CI installs everything (scripts/install-deps, scripts/install-node-deps)
 * and a skip there would hide a broken set-up. */
void t_missing(const char *why);

/* The first n MNIST test images (n, 28, 28) as raw bytes, and their
 * labels if labels is not NULL; the test is skipped (t_need_mnist) when
 * MNIST is not there. Free with free(). */
uint8_t *t_mnist_pixels(size_t n, uint8_t **labels);
/* Those pixels normalised ((p/255 - mean) / std) as the model wants:
 * (n, 28, 28) floats, malloc'd. */
float *t_normalise(const uint8_t *px, size_t n, float mean, float std);

/* Writes n floats raw (little-endian float32) to path. */
void t_write_floats(const char *path, const float *v, size_t n);
/* Reads exactly n raw float32 values from path; fails the test if the
 * file is missing or of another size. */
float *t_read_floats(const char *path, size_t n);

/* Compares log-probabilities got with ref, both (n, k): every value within
 * tol, and the same arg-max for every sample (unless ref's two best are
 * within tol of each other, where either answer is right; at most one in
 * a hundred may be such a near-tie). Fails the test naming the first
 * sample that differs; otherwise prints "what: ..." with the largest
 * difference and returns it. */
double t_compare_logp(const char *what, const float *ref, const float *got, size_t n, int k,
                      double tol);

#endif
