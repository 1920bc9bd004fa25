#include "facts.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_sriov.h"

/* Reads the first line of root/rel into buf; returns 0 or -1. */
static int read_line(const char *root, const char *rel, char *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s%s", root, rel);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(buf, (int)len, f);
    fclose(f);
    if (!ok) return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

static long long read_ll(const char *root, const char *rel, long long def)
{
    char buf[64];
    if (read_line(root, rel, buf, sizeof(buf)) < 0) return def;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return end == buf ? def : v;
}

static long long mem_total_mib(const char *root)
{
    char path[PATH_MAX], line[256];
    snprintf(path, sizeof(path), "%s/proc/meminfo", root);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    long long kib = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemTotal: %lld kB", &kib) == 1) break;
    fclose(f);
    return kib / 1024;
}

static void count_cpus(const char *root, long long *cpus, long long *cores)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/sys/devices/system/cpu", root);
    DIR *d = opendir(path);
    *cpus = *cores = 0;
    if (!d) return;
    /* a physical core is one (package, core) pair */
    long long seen[1024][2];
    size_t nseen = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int n;
        char tail;
        if (sscanf(e->d_name, "cpu%d%c", &n, &tail) != 1) continue;
        char rel[PATH_MAX];
        snprintf(rel, sizeof(rel), "/sys/devices/system/cpu/%s/online", e->d_name);
        if (read_ll(root, rel, 1) == 0) continue;
        (*cpus)++;
        snprintf(rel, sizeof(rel), "/sys/devices/system/cpu/%s/topology/physical_package_id",
                 e->d_name);
        long long pkg = read_ll(root, rel, 0);
        snprintf(rel, sizeof(rel), "/sys/devices/system/cpu/%s/topology/core_id", e->d_name);
        long long core = read_ll(root, rel, n);
        size_t i = 0;
        while (i < nseen && !(seen[i][0] == pkg && seen[i][1] == core))
            i++;
        if (i == nseen && nseen < 1024) {
            seen[nseen][0] = pkg;
            seen[nseen][1] = core;
            nseen++;
        }
    }
    closedir(d);
    *cores = (long long)nseen;
}

json_t *facts_collect(const char *root)
{
    long long cpus, cores;
    count_cpus(root, &cpus, &cores);
    return json_pack("{s:I, s:I, s:I, s:o}", "cpus", (json_int_t)cpus, "cores", (json_int_t)cores,
                     "memory_mib", (json_int_t)mem_total_mib(root), "nics", ag_sriov_collect(root));
}
