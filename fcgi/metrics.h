/*
 * metrics.h - in-process counters for the Prometheus exposition (h_topology.c):
 * requests by status class and a latency histogram, updated lock-free.
 */
#ifndef BIC_METRICS_H
#define BIC_METRICS_H

#include <stddef.h>

/* Records one answered request. */
void metrics_observe(int status, double seconds);

/* Appends the request metrics in text exposition format to buf; returns bytes written. */
size_t metrics_format_requests(char *buf, size_t len);

#endif
