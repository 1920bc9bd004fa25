#include "ag_domains.h"

#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_util.h"

static const char *const state_names[] = {
    [VIR_DOMAIN_NOSTATE] = "nostate",   [VIR_DOMAIN_RUNNING] = "running",
    [VIR_DOMAIN_BLOCKED] = "blocked",   [VIR_DOMAIN_PAUSED] = "paused",
    [VIR_DOMAIN_SHUTDOWN] = "shutdown", [VIR_DOMAIN_SHUTOFF] = "shutoff",
    [VIR_DOMAIN_CRASHED] = "crashed",   [VIR_DOMAIN_PMSUSPENDED] = "pmsuspended",
};

const char *ag_dom_state_name(int state)
{
    if (state < 0 || state >= (int)AG_NELEM(state_names) || !state_names[state]) return "nostate";
    return state_names[state];
}

static int cmp_dom(const void *a, const void *b)
{
    return strcmp(((const ag_dom *)a)->uuid, ((const ag_dom *)b)->uuid);
}

void ag_snapshot_sort(ag_snapshot *s)
{
    if (s->n > 1) qsort(s->d, s->n, sizeof(*s->d), cmp_dom);
}

void ag_snapshot_clear(ag_snapshot *s)
{
    free(s->d);
    s->d = NULL;
    s->n = 0;
}

void ag_snapshot_move(ag_snapshot *dst, ag_snapshot *src)
{
    if (dst == src) return;
    ag_snapshot_clear(dst);
    *dst = *src;
    src->d = NULL;
    src->n = 0;
}

const ag_dom *ag_snapshot_find(const ag_snapshot *s, const char *uuid)
{
    if (!s->n) return NULL;
    ag_dom key;
    snprintf(key.uuid, sizeof(key.uuid), "%s", uuid);
    return bsearch(&key, s->d, s->n, sizeof(*s->d), cmp_dom);
}

static void set_err(char *err, size_t errlen, const char *what)
{
    const char *m = virGetLastErrorMessage();
    snprintf(err, errlen, "%s: %s", what, m ? m : "unknown libvirt error");
}

/* What the collection of one snapshot needs besides the domain. */
struct collect {
    const ag_snapshot *prev;
    const char *console_host;
};

/* Sets the console of running domain d: from prev for the same run, else from its live XML. */
static void fill_console(virDomainPtr dom, const struct collect *cc, ag_dom *d)
{
    const ag_dom *p = cc->prev ? ag_snapshot_find(cc->prev, d->uuid) : NULL;
    if (p && p->console_read && p->id == d->id) {
        memcpy(d->console_host, p->console_host, sizeof(d->console_host));
        d->console_port = p->console_port;
        d->console_read = 1;
        return;
    }
    AG_AUTOFREE char *xml = virDomainGetXMLDesc(dom, 0);
    ag_console c;
    if (!xml || ag_console_from_xml(xml, cc->console_host, &c) < 0) {
        virResetLastError(); /* gone meanwhile: tried again next time */
        return;
    }
    d->console_read = 1;
    if (c.port) {
        memcpy(d->console_host, c.host, sizeof(d->console_host));
        d->console_port = c.port;
    }
}

/* Fills d from one domain and its stats record (params may be NULL). */
static int fill_dom(virDomainPtr dom, virTypedParameterPtr params, int nparams,
                    const struct collect *cc, ag_dom *d)
{
    memset(d, 0, sizeof(*d));
    if (virDomainGetUUIDString(dom, d->uuid) < 0) return -1;
    const char *name = virDomainGetName(dom);
    snprintf(d->name, sizeof(d->name), "%s", name ? name : "");
    int state = -1;
    unsigned long long cpu = 0, mem_kib = 0, v = 0, rx = 0, tx = 0;
    unsigned vcpus = 0, nets = 0;
    int have_cpu = 0, have_mem = 0, have_vcpus = 0;
    if (params) {
        if (virTypedParamsGetInt(params, nparams, "state.state", &state) != 1) state = -1;
        have_cpu = virTypedParamsGetULLong(params, nparams, "cpu.time", &cpu) == 1;
        have_mem = virTypedParamsGetULLong(params, nparams, "balloon.maximum", &mem_kib) == 1;
        have_vcpus = virTypedParamsGetUInt(params, nparams, "vcpu.current", &vcpus) == 1;
        if (virTypedParamsGetUInt(params, nparams, "net.count", &nets) == 1) {
            for (unsigned i = 0; i < nets && i < 4096; i++) {
                char key[64];
                snprintf(key, sizeof(key), "net.%u.rx.bytes", i);
                if (virTypedParamsGetULLong(params, nparams, key, &v) == 1) rx += v;
                snprintf(key, sizeof(key), "net.%u.tx.bytes", i);
                if (virTypedParamsGetULLong(params, nparams, key, &v) == 1) tx += v;
            }
        }
    }
    if (state < 0 || !have_cpu || !have_mem || !have_vcpus) {
        virDomainInfo info;
        if (virDomainGetInfo(dom, &info) < 0) {
            /* the domain went away between listing and asking: keep what we have */
            if (state < 0) return -1;
        } else {
            if (state < 0) state = info.state;
            if (!have_cpu) cpu = info.cpuTime;
            if (!have_mem) mem_kib = info.maxMem;
            if (!have_vcpus) vcpus = info.nrVirtCpu;
        }
    }
    d->state = state;
    d->cpu_time_ns = (long long)(cpu % AG_COUNTER_WRAP);
    d->rx_bytes = (long long)(rx % AG_COUNTER_WRAP);
    d->tx_bytes = (long long)(tx % AG_COUNTER_WRAP);
    d->memory_mib = (long long)(mem_kib / 1024);
    d->vcpus = vcpus;
    d->id = (int)virDomainGetID(dom);
    if (state == VIR_DOMAIN_RUNNING) fill_console(dom, cc, d);
    return 0;
}

static int collect_by_listing(virConnectPtr conn, const struct collect *cc, ag_snapshot *out,
                              char *err, size_t errlen)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        set_err(err, errlen, "virConnectListAllDomains");
        return -1;
    }
    out->d = calloc(n ? (size_t)n : 1, sizeof(*out->d));
    for (int i = 0; i < n; i++) {
        if (out->d && fill_dom(doms[i], NULL, 0, cc, &out->d[out->n]) == 0) out->n++;
        virDomainFree(doms[i]);
    }
    free(doms);
    if (!out->d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int ag_domains_collect(virConnectPtr conn, const ag_snapshot *prev, const char *console_host,
                       ag_snapshot *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct collect cc = {prev, console_host};
    virDomainStatsRecordPtr *recs = NULL;
    unsigned stats = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                     VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE;
    int n = virConnectGetAllDomainStats(conn, stats, &recs, 0);
    if (n < 0) {
        virErrorPtr e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_SUPPORT) {
            int rc = collect_by_listing(conn, &cc, out, err, errlen);
            if (rc == 0) ag_snapshot_sort(out);
            return rc;
        }
        set_err(err, errlen, "virConnectGetAllDomainStats");
        return -1;
    }
    out->d = calloc(n ? (size_t)n : 1, sizeof(*out->d));
    if (!out->d) {
        virDomainStatsRecordListFree(recs);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (fill_dom(recs[i]->dom, recs[i]->params, recs[i]->nparams, &cc, &out->d[out->n]) == 0)
            out->n++;
    virDomainStatsRecordListFree(recs);
    ag_snapshot_sort(out);
    return 0;
}

json_t *ag_dom_json(const ag_dom *d)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "uuid", d->uuid, "name", d->name,
                  "state", ag_dom_state_name(d->state), "vcpus", (json_int_t)d->vcpus, "memory_mib",
                  (json_int_t)d->memory_mib, "cpu_time_ns", (json_int_t)d->cpu_time_ns, "rx_bytes",
                  (json_int_t)d->rx_bytes, "tx_bytes", (json_int_t)d->tx_bytes);
    if (j && d->console_port > 0 &&
        (json_object_set_new(j, "console_host", json_string(d->console_host)) < 0 ||
         json_object_set_new(j, "console_port", json_integer(d->console_port)) < 0)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

json_t *ag_snapshot_json(const ag_snapshot *s)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < s->n; i++)
        if (json_array_append_new(a, ag_dom_json(&s->d[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

void ag_snapshot_mark_sent(ag_snapshot *s, long long now)
{
    for (size_t i = 0; i < s->n; i++)
        s->d[i].counters_sent_at = now;
}

/* state, name, vcpus, memory or console: sent at once */
static int dom_config_differs(const ag_dom *a, const ag_dom *b)
{
    return strcmp(a->name, b->name) || a->state != b->state || a->vcpus != b->vcpus ||
           a->memory_mib != b->memory_mib || a->console_port != b->console_port ||
           strcmp(a->console_host, b->console_host);
}

static int dom_counters_differ(const ag_dom *a, const ag_dom *b)
{
    return a->cpu_time_ns != b->cpu_time_ns || a->rx_bytes != b->rx_bytes ||
           a->tx_bytes != b->tx_bytes;
}

json_t *ag_snapshot_delta(const ag_snapshot *prev, ag_snapshot *cur, long long now,
                          json_t **removed)
{
    json_t *changed = json_array();
    *removed = json_array();
    if (!changed || !*removed) goto oom;
    /* both are sorted by uuid: one merge pass */
    size_t i = 0, j = 0;
    while (i < prev->n || j < cur->n) {
        int c = i == prev->n ? 1 : j == cur->n ? -1 : strcmp(prev->d[i].uuid, cur->d[j].uuid);
        if (c < 0) {
            if (json_array_append_new(*removed, json_string(prev->d[i].uuid)) < 0) goto oom;
            i++;
        } else if (c > 0) {
            if (json_array_append_new(changed, ag_dom_json(&cur->d[j])) < 0) goto oom;
            cur->d[j].counters_sent_at = now;
            j++;
        } else {
            const ag_dom *p = &prev->d[i];
            ag_dom *d = &cur->d[j];
            int counters = dom_counters_differ(p, d);
            if (dom_config_differs(p, d) ||
                (counters && now - p->counters_sent_at >= AG_COUNTERS_INTERVAL_S)) {
                if (json_array_append_new(changed, ag_dom_json(d)) < 0) goto oom;
                d->counters_sent_at = now;
            } else {
                /* not sent: cur keeps what CCC was last told, so that the change
                   is sent once the interval is over even if the counters stop */
                d->cpu_time_ns = p->cpu_time_ns;
                d->rx_bytes = p->rx_bytes;
                d->tx_bytes = p->tx_bytes;
                d->counters_sent_at = p->counters_sent_at;
            }
            i++;
            j++;
        }
    }
    return changed;
oom:
    json_decref(changed);
    json_decref(*removed);
    *removed = NULL;
    return NULL;
}
