/*
 * metrics.c - what is measured on log-probabilities: the predicted class,
 * the accuracy with its standard error, the confusion matrix, per-class
 * precision, recall and F1, and the most confused pairs. The trainer,
 * `eval`, `report` and `serve` all take them from here, so that they agree.
 */
#include "digitnet.h"

#include <math.h>
#include <string.h>

int dn_argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

double dn_accuracy(size_t correct, size_t n, double *se)
{
    double acc = n ? (double)correct / (double)n : NAN;
    if (se)
        *se = n ? sqrt(acc * (1 - acc) / (double)n) : NAN;
    return acc;
}

size_t dn_confusion_add(size_t *cm, int k, const float *logp, const uint8_t *labels, size_t n)
{
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        int p = dn_argmax(logp + i * (size_t)k, k), y = labels[i];
        if (y >= k)
            continue;
        cm[(size_t)y * (size_t)k + (size_t)p]++;
        right += p == y;
    }
    return right;
}

void dn_class_scores_of(const size_t *cm, int k, dn_class_scores *scores)
{
    for (int c = 0; c < k; c++) {
        size_t tp = cm[(size_t)c * (size_t)k + (size_t)c], predicted = 0, truth = 0;
        for (int j = 0; j < k; j++) {
            predicted += cm[(size_t)j * (size_t)k + (size_t)c];
            truth += cm[(size_t)c * (size_t)k + (size_t)j];
        }
        dn_class_scores *s = &scores[c];
        s->support = truth;
        s->precision = predicted ? (double)tp / (double)predicted : 0;
        s->recall = truth ? (double)tp / (double)truth : 0;
        s->f1 = s->precision + s->recall > 0
                    ? 2 * s->precision * s->recall / (s->precision + s->recall)
                    : 0;
    }
}

int dn_most_confused(const size_t *cm, int k, dn_confused_pair *pairs, int max)
{
    int n = 0;
    /* Cells in (true, predicted) order; each goes after every kept one
     * with at least its count, which orders ties by (true, predicted). */
    for (int t = 0; t < k; t++)
        for (int p = 0; p < k; p++) {
            size_t c = cm[(size_t)t * (size_t)k + (size_t)p];
            if (t == p || c == 0)
                continue;
            int at = n;
            while (at > 0 && pairs[at - 1].count < c)
                at--;
            if (at >= max)
                continue;
            int move = (n < max ? n : max - 1) - at;
            memmove(&pairs[at + 1], &pairs[at], (size_t)move * sizeof *pairs);
            pairs[at] = (dn_confused_pair){t, p, c};
            n += n < max;
        }
    return n;
}
