/*
 * h_topology.c - xCenter roll-ups: the CCC -> building block -> module tree with
 * servers and desktops by state and capacity against the paper's limits, and
 * the Prometheus exposition at /metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "metrics.h"
#include "util.h"

static json_t *module_rollup(const bic_rows *m, size_t i)
{
    long long servers = rows_int(m, i, 8), max_d = rows_int(m, i, 9), cores = rows_int(m, i, 10);
    long long nic_mbps = rows_int(m, i, 11);
    long long by_cores = cores * 6, by_nic = nic_mbps * 50 / 1000, cap = max_d;
    if (by_cores < cap) cap = by_cores;
    if (by_nic < cap) cap = by_nic;
    return json_pack(
        "{s:I, s:s, s:I, s:{s:I, s:I, s:I, s:I, s:I}, s:{}, s:{s:I, s:I, s:I, s:I, s:I}}", "id",
        (json_int_t)rows_int(m, i, 0), "name", rows_str(m, i, 2), "max_servers",
        (json_int_t)rows_int(m, i, 3), "servers", "online", (json_int_t)rows_int(m, i, 4),
        "offline", (json_int_t)rows_int(m, i, 5), "enrolling", (json_int_t)rows_int(m, i, 6),
        "maintenance", (json_int_t)rows_int(m, i, 7), "total", (json_int_t)servers, "desktops",
        "capacity", "desktops", (json_int_t)cap, "by_servers", (json_int_t)max_d, "by_cores",
        (json_int_t)by_cores, "by_nics", (json_int_t)by_nic, "memory_mib",
        (json_int_t)rows_int(m, i, 12));
}

bic_err h_topology_get(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_err e = query_page(req, 20, 200, "after", 0, &limit, &after);
    bic_rows bbs, mods, desk;
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_bb_page, &bbs, P_INT(after), P_INT(limit));
    if (e != BIC_E_OK) return e == BIC_E_VALIDATION ? e : fail(req, e, "topology query failed");
    json_t *items = json_array();
    if (bbs.nrows) {
        long long lo = rows_int(&bbs, 0, 0), hi = rows_int(&bbs, bbs.nrows - 1, 0);
        e = DB_EXEC(req->db, req->arena, STMT_rollup_modules, &mods, P_INT(lo), P_INT(hi));
        if (e == BIC_E_OK)
            e = DB_EXEC(req->db, req->arena, STMT_rollup_desktops, &desk, P_INT(lo), P_INT(hi));
        if (e != BIC_E_OK) {
            json_decref(items);
            return fail(req, e, "topology roll-up failed");
        }
        size_t mi = 0;
        for (size_t b = 0; b < bbs.nrows; b++) {
            long long bid = rows_int(&bbs, b, 0);
            json_t *modules = json_array();
            json_t *totals = json_pack("{s:I, s:I, s:I, s:I, s:I}", "servers", (json_int_t)0,
                                       "online", (json_int_t)0, "offline", (json_int_t)0,
                                       "desktops", (json_int_t)0, "capacity", (json_int_t)0);
            for (; mi < mods.nrows && rows_int(&mods, mi, 1) == bid; mi++) {
                json_t *m = module_rollup(&mods, mi);
                json_t *ds = json_object_get(m, "desktops");
                long long dtotal = 0;
                for (size_t d = 0; d < desk.nrows; d++)
                    if (rows_int(&desk, d, 0) == rows_int(&mods, mi, 0)) {
                        json_object_set_new(ds, rows_str(&desk, d, 1),
                                            json_integer(rows_int(&desk, d, 2)));
                        dtotal += rows_int(&desk, d, 2);
                    }
                json_object_set_new(ds, "total", json_integer(dtotal));
#define ADD(key, v)                                                                                \
    json_object_set_new(totals, key,                                                               \
                        json_integer(json_integer_value(json_object_get(totals, key)) + (v)))
                ADD("servers", rows_int(&mods, mi, 8));
                ADD("online", rows_int(&mods, mi, 4));
                ADD("offline", rows_int(&mods, mi, 5));
                ADD("desktops", dtotal);
                ADD("capacity", json_integer_value(
                                    json_object_get(json_object_get(m, "capacity"), "desktops")));
#undef ADD
                json_array_append_new(modules, m);
            }
            json_array_append_new(items, json_pack("{s:I, s:s, s:o, s:o}", "id", (json_int_t)bid,
                                                   "name", rows_str(&bbs, b, 1), "totals", totals,
                                                   "modules", modules));
        }
    }
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o, s:{s:I, s:I, s:I}}", "items", items, "next_after",
                        page_next(&bbs, limit), "limits", "desktops_per_server", (json_int_t)100,
                        "desktops_per_core", (json_int_t)6, "desktops_per_gbps", (json_int_t)50));
    return BIC_E_OK;
}

/* Writes s as a Prometheus label value (escapes backslash, quote and newline). */
static void label(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\\' || *s == '"') fputc('\\', f);
        if (*s == '\n') {
            fputs("\\n", f);
            continue;
        }
        fputc(*s, f);
    }
}

bic_err h_metrics_get(bic_req *req, bic_resp *resp)
{
    bic_rows srv, desk, tasks, hosts;
    bic_err e = DB_EXEC0(req->db, req->arena, STMT_metrics_servers, &srv);
    if (e == BIC_E_OK) e = DB_EXEC0(req->db, req->arena, STMT_metrics_desktops, &desk);
    if (e == BIC_E_OK) e = DB_EXEC0(req->db, req->arena, STMT_metrics_tasks, &tasks);
    if (e == BIC_E_OK) e = DB_EXEC0(req->db, req->arena, STMT_metrics_hosts, &hosts);
    if (e != BIC_E_OK) return fail(req, e, "metrics queries failed");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return fail(req, BIC_E_INTERNAL, "out of memory");
    fputs("# HELP bic_servers Servers (bServers) by health state and maintenance flag.\n"
          "# TYPE bic_servers gauge\n",
          f);
    for (size_t i = 0; i < srv.nrows; i++)
        fprintf(f, "bic_servers{state=\"%s\",maintenance=\"%s\"} %lld\n", rows_str(&srv, i, 0),
                rows_int(&srv, i, 1) ? "true" : "false", rows_int(&srv, i, 2));
    fputs("# HELP bic_desktops Desktops (libvirt domains) by state.\n# TYPE bic_desktops gauge\n",
          f);
    for (size_t i = 0; i < desk.nrows; i++)
        fprintf(f, "bic_desktops{state=\"%s\"} %lld\n", rows_str(&desk, i, 0),
                rows_int(&desk, i, 1));
    fputs("# HELP bic_tasks Agent tasks by state.\n# TYPE bic_tasks gauge\n", f);
    for (size_t i = 0; i < tasks.nrows; i++)
        fprintf(f, "bic_tasks{state=\"%s\"} %lld\n", rows_str(&tasks, i, 0),
                rows_int(&tasks, i, 1));
    static const struct {
        const char *name, *help;
        int col;
        double scale;
    } g[] = {
        {"bic_server_cpu_ratio", "Host CPU use, 0 to 1, from the last heartbeat.", 3, 0.01},
        {"bic_server_memory_used_bytes", "Host memory in use.", 4, 1048576.0},
        {"bic_server_memory_bytes", "Host memory.", 5, 1048576.0},
        {"bic_server_network_receive_bits_per_second", "Host receive rate (physical NICs).", 6, 1},
        {"bic_server_network_transmit_bits_per_second", "Host transmit rate (physical NICs).", 7,
         1},
        {"bic_server_up", "1 when the server's agent heartbeats.", 8, 1},
    };
    for (size_t k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", g[k].name, g[k].help, g[k].name);
        for (size_t i = 0; i < hosts.nrows; i++) {
            fprintf(f, "%s{server=\"%lld\",hostname=\"", g[k].name, rows_int(&hosts, i, 0));
            label(f, rows_str(&hosts, i, 1));
            fputs("\",module=\"", f);
            label(f, rows_str(&hosts, i, 2));
            const char *v = rows_str(&hosts, i, g[k].col);
            fprintf(f, "\"} %.10g\n", (v ? strtod(v, NULL) : 0) * g[k].scale);
        }
    }
    char rq[4096];
    size_t n = metrics_format_requests(rq, sizeof(rq));
    fwrite(rq, 1, n, f);
    fclose(f);
    arena_defer(req->arena, free, buf);
    resp->status = 200;
    resp->raw = buf;
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return BIC_E_OK;
}
