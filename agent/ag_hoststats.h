/*
 * ag_hoststats.h - host load for heartbeats from <root>/proc/stat, /proc/meminfo
 * and /proc/net/dev. CPU and network are rates, so they come from the difference
 * between two samples.
 */
#ifndef BIC_AG_HOSTSTATS_H
#define BIC_AG_HOSTSTATS_H

#include <jansson.h>

typedef struct ag_host_sample {
    int have_cpu, have_mem, have_net;
    unsigned long long cpu_total, cpu_idle; /* jiffies; idle includes iowait */
    unsigned long long mem_total_kib, mem_avail_kib;
    unsigned long long rx_bytes, tx_bytes; /* summed over the counted NICs */
    long long at_ms;                       /* when it was taken (monotonic) */
} ag_host_sample;

typedef struct ag_host_stats {
    double cpu_pct; /* 0..100, one decimal */
    long long mem_total_mib, mem_used_mib;
    long long net_rx_bps, net_tx_bps; /* bits per second */
} ag_host_stats;

/*
 * Reads one sample below root ("" = this machine), stamped at_ms. Network
 * counters cover the physical NICs (those with <root>/sys/class/net/<if>/device);
 * when <root>/sys/class/net cannot be read, every interface but lo. A file that
 * cannot be read leaves its have_ flag 0. Returns 0 when all three were read, -1
 * otherwise (the sample is still usable).
 */
int ag_host_sample_read(const char *root, long long at_ms, ag_host_sample *s);

/*
 * Rates between prev and cur. prev NULL (the first sample): CPU since boot and
 * no network rate. A counter that went backwards (reset, wrap) gives 0.
 */
void ag_host_stats_compute(const ag_host_sample *prev, const ag_host_sample *cur,
                           ag_host_stats *out);

/* {"cpu_pct","mem_total_mib","mem_used_mib","net_rx_bps","net_tx_bps"}; NULL on OOM. */
json_t *ag_host_stats_json(const ag_host_stats *st);

#endif
