#include "metrics.h"

#include <stdatomic.h>
#include <stdio.h>

static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NB (sizeof(bounds) / sizeof(bounds[0]))

static atomic_ullong buckets[NB], count, by_class[6];
static atomic_ullong sum_us;

void metrics_observe(int status, double seconds)
{
    for (size_t i = 0; i < NB; i++)
        if (seconds <= bounds[i]) atomic_fetch_add(&buckets[i], 1);
    atomic_fetch_add(&count, 1);
    atomic_fetch_add(&sum_us, (unsigned long long)(seconds * 1e6));
    int c = status / 100;
    atomic_fetch_add(&by_class[c >= 1 && c <= 5 ? c : 0], 1);
}

size_t metrics_format_requests(char *buf, size_t len)
{
    size_t n = 0;
#define OUT(...)                                                                                   \
    do {                                                                                           \
        int w = snprintf(buf + n, n < len ? len - n : 0, __VA_ARGS__);                             \
        if (w > 0) n += (size_t)w;                                                                 \
    } while (0)
    OUT("# HELP bic_http_requests_total Requests answered by this bicd, by status class.\n");
    OUT("# TYPE bic_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        OUT("bic_http_requests_total{code=\"%dxx\"} %llu\n", c, (unsigned long long)by_class[c]);
    OUT("# HELP bic_http_request_duration_seconds Time from request to response in bicd.\n");
    OUT("# TYPE bic_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < NB; i++)
        OUT("bic_http_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
            (unsigned long long)buckets[i]);
    OUT("bic_http_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)count);
    OUT("bic_http_request_duration_seconds_sum %.6f\n", (double)sum_us / 1e6);
    OUT("bic_http_request_duration_seconds_count %llu\n", (unsigned long long)count);
#undef OUT
    return n < len ? n : len;
}
