#include "ag_hoststats.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static FILE *open_below(const char *root, const char *rel)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s%s", root, rel);
    return fopen(path, "re");
}

static int read_cpu(const char *root, ag_host_sample *s)
{
    FILE *f = open_below(root, "/proc/stat");
    if (!f) return -1;
    char line[512];
    int ok = -1;
    if (fgets(line, sizeof(line), f)) {
        unsigned long long v[8] = {0};
        /* cpu user nice system idle iowait irq softirq steal (guest is inside user) */
        int n = sscanf(line, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5], &v[6], &v[7]);
        if (n >= 4) {
            s->cpu_total = 0;
            for (int i = 0; i < 8; i++)
                s->cpu_total += v[i];
            s->cpu_idle = v[3] + v[4];
            ok = 0;
        }
    }
    fclose(f);
    return ok;
}

static int read_mem(const char *root, ag_host_sample *s)
{
    FILE *f = open_below(root, "/proc/meminfo");
    if (!f) return -1;
    char line[256];
    unsigned long long total = 0, avail = 0, memfree = 0, buffers = 0, cached = 0, v;
    int have_avail = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "MemTotal: %llu", &v) == 1)
            total = v;
        else if (sscanf(line, "MemAvailable: %llu", &v) == 1)
            avail = v, have_avail = 1;
        else if (sscanf(line, "MemFree: %llu", &v) == 1)
            memfree = v;
        else if (sscanf(line, "Buffers: %llu", &v) == 1)
            buffers = v;
        else if (sscanf(line, "Cached: %llu", &v) == 1)
            cached = v;
    }
    fclose(f);
    if (!total) return -1;
    /* kernels before 3.14 have no MemAvailable */
    if (!have_avail) avail = memfree + buffers + cached;
    s->mem_total_kib = total;
    s->mem_avail_kib = avail > total ? total : avail;
    return 0;
}

/* 1: count this interface; 0: leave it out. */
static int nic_counts(const char *root, int have_sys, const char *name)
{
    if (!strcmp(name, "lo")) return 0;
    if (!have_sys) return 1;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/sys/class/net/%s/device", root, name);
    return access(path, F_OK) == 0;
}

static int read_net(const char *root, ag_host_sample *s)
{
    char sys[PATH_MAX];
    snprintf(sys, sizeof(sys), "%s/sys/class/net", root);
    int have_sys = access(sys, R_OK | X_OK) == 0;
    FILE *f = open_below(root, "/proc/net/dev");
    if (!f) return -1;
    char line[512];
    s->rx_bytes = s->tx_bytes = 0;
    int lines = 0;
    while (fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');
        if (!colon) continue; /* the two header lines */
        *colon = '\0';
        char *name = line;
        while (*name == ' ')
            name++;
        unsigned long long rx, tx, skip;
        /* rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ... */
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu", &rx, &skip, &skip,
                   &skip, &skip, &skip, &skip, &skip, &tx) != 9)
            continue;
        lines++;
        if (!nic_counts(root, have_sys, name)) continue;
        s->rx_bytes += rx;
        s->tx_bytes += tx;
    }
    fclose(f);
    return lines ? 0 : -1;
}

int ag_host_sample_read(const char *root, long long at_ms, ag_host_sample *s)
{
    memset(s, 0, sizeof(*s));
    s->at_ms = at_ms;
    s->have_cpu = read_cpu(root, s) == 0;
    s->have_mem = read_mem(root, s) == 0;
    s->have_net = read_net(root, s) == 0;
    return s->have_cpu && s->have_mem && s->have_net ? 0 : -1;
}

static long long rate_bps(unsigned long long before, unsigned long long after, long long ms)
{
    if (after < before || ms <= 0) return 0;
    return (long long)((double)(after - before) * 8.0 * 1000.0 / (double)ms + 0.5);
}

void ag_host_stats_compute(const ag_host_sample *prev, const ag_host_sample *cur,
                           ag_host_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (cur->have_cpu) {
        unsigned long long total = cur->cpu_total, idle = cur->cpu_idle;
        if (prev && prev->have_cpu) {
            total = cur->cpu_total >= prev->cpu_total ? cur->cpu_total - prev->cpu_total : 0;
            idle = cur->cpu_idle >= prev->cpu_idle ? cur->cpu_idle - prev->cpu_idle : 0;
        }
        if (total > 0 && idle <= total)
            out->cpu_pct =
                (double)(long long)(1000.0 * (double)(total - idle) / (double)total + 0.5) / 10.0;
    }
    if (cur->have_mem) {
        out->mem_total_mib = (long long)(cur->mem_total_kib / 1024);
        out->mem_used_mib = (long long)((cur->mem_total_kib - cur->mem_avail_kib) / 1024);
    }
    if (prev && prev->have_net && cur->have_net) {
        long long ms = cur->at_ms - prev->at_ms;
        out->net_rx_bps = rate_bps(prev->rx_bytes, cur->rx_bytes, ms);
        out->net_tx_bps = rate_bps(prev->tx_bytes, cur->tx_bytes, ms);
    }
}

json_t *ag_host_stats_json(const ag_host_stats *st)
{
    return json_pack("{s:f, s:I, s:I, s:I, s:I}", "cpu_pct", st->cpu_pct, "mem_total_mib",
                     (json_int_t)st->mem_total_mib, "mem_used_mib", (json_int_t)st->mem_used_mib,
                     "net_rx_bps", (json_int_t)st->net_rx_bps, "net_tx_bps",
                     (json_int_t)st->net_tx_bps);
}
