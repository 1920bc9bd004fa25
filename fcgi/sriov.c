#include "sriov.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_NICS 64
#define MAX_VFS  512

bool sriov_pci_valid(const char *s)
{
    /* dddd:bb:ss.f */
    static const char shape[] = "xxxx:xx:xx.x";
    if (!s || strlen(s) != sizeof(shape) - 1) return false;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] != 'x') {
            if (s[i] != shape[i]) return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return s[11] <= '7'; /* a PCI function is 0..7 */
}

/* interface names as the kernel allows them: 1..15 characters, no '/', ':' or space */
static bool ifname_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 15 || !strcmp(s, ".") || !strcmp(s, "..")) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("._-@", s[i])) return false;
    return true;
}

static bool short_str(const json_t *o, const char *key, size_t max)
{
    const json_t *v = json_object_get(o, key);
    return !v || (json_is_string(v) && json_string_length(v) <= max);
}

static bool count_ok(const json_t *o, const char *key, long long max)
{
    const json_t *v = json_object_get(o, key);
    return !v ||
           (json_is_integer(v) && json_integer_value(v) >= -1 && json_integer_value(v) <= max);
}

bool sriov_nics_valid(const json_t *nics, char *why, size_t len)
{
    if (!json_is_array(nics)) return snprintf(why, len, "nics must be an array"), false;
    if (json_array_size(nics) > MAX_NICS)
        return snprintf(why, len, "at most %d NICs", MAX_NICS), false;
    size_t i, k;
    const json_t *n, *vf;
    json_array_foreach(nics, i, n)
    {
        const char *name = json_string_value(json_object_get(n, "name"));
        if (!json_is_object(n) || !ifname_valid(name))
            return snprintf(why, len, "nics[%zu].name must be an interface name", i), false;
        const char *pci = json_string_value(json_object_get(n, "pci"));
        if (json_object_get(n, "pci") && (!pci || (*pci && !sriov_pci_valid(pci))))
            return snprintf(why, len, "nics[%zu].pci must be a PCI address", i), false;
        const char *link = json_string_value(json_object_get(n, "link"));
        if (json_object_get(n, "link") &&
            (!link || (strcmp(link, "up") && strcmp(link, "down") && strcmp(link, "unknown"))))
            return snprintf(why, len, "nics[%zu].link must be up, down or unknown", i), false;
        if (!short_str(n, "driver", 64) || !short_str(n, "vendor", 8) ||
            !short_str(n, "device", 8) || !short_str(n, "mac", 17))
            return snprintf(why, len, "nics[%zu]: driver, vendor, device or mac too long", i),
                   false;
        if (!count_ok(n, "speed_mbps", 10000000) || !count_ok(n, "sriov_total_vfs", 65535) ||
            !count_ok(n, "sriov_num_vfs", 65535))
            return snprintf(why, len, "nics[%zu]: speed or VF count out of range", i), false;
        const json_t *vfs = json_object_get(n, "vfs");
        if (!vfs) continue;
        if (!json_is_array(vfs) || json_array_size(vfs) > MAX_VFS)
            return snprintf(why, len, "nics[%zu].vfs must be an array of at most %d", i, MAX_VFS),
                   false;
        json_array_foreach(vfs, k, vf)
        {
            const json_t *idx = json_object_get(vf, "index");
            if (!json_is_object(vf) || !json_is_integer(idx) || json_integer_value(idx) < 0 ||
                json_integer_value(idx) > 65535 ||
                !sriov_pci_valid(json_string_value(json_object_get(vf, "pci"))) ||
                !short_str(vf, "driver", 64))
                return snprintf(why, len,
                                "nics[%zu].vfs[%zu] needs index (0..65535), a PCI address and "
                                "a driver of at most 64 characters",
                                i, k),
                       false;
        }
    }
    return true;
}

bic_err sriov_store_nics(bic_req *req, long long server_id, const json_t *nics)
{
    bic_db *db = req->db;
    char *nj = json_dumps(nics, JSON_COMPACT);
    if (!nj) return BIC_E_INTERNAL;
    arena_defer(req->arena, free, nj);
    bic_rows gone;
    bic_err e = DB_EXEC(db, req->arena, STMT_server_nics_clear, NULL, P_INT(server_id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_server_nics_insert, NULL, P_INT(server_id), P_STR(nj));
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_server_vfs_absent, NULL, P_INT(server_id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_server_vfs_upsert, NULL, P_INT(server_id), P_STR(nj));
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_server_vfs_prune, NULL, P_INT(server_id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_server_vfs_missing, &gone, P_INT(server_id));
    for (size_t i = 0; e == BIC_E_OK && i < gone.nrows; i++) {
        const char *note =
            arena_printf(req->arena, "its VF %s (%s VF %lld) is no longer reported by the server",
                         rows_str(&gone, i, 4), rows_str(&gone, i, 2), rows_int(&gone, i, 3));
        e = DB_EXEC(db, req->arena, STMT_desktop_nic_note, NULL, P_STR(note),
                    P_INT(rows_int(&gone, i, 1)), P_STR(note));
        if (e == BIC_E_OK && db_affected(db) == 1)
            e = DB_EXEC(
                db, req->arena, STMT_event_insert, NULL, P_INT(server_id), P_NULL,
                P_STR("vf.missing"),
                P_STR(arena_printf(req->arena, "desktop %lld: %s", rows_int(&gone, i, 1), note)));
    }
    return e;
}

void sriov_desktop_mac(long long desktop_id, char out[18])
{
    unsigned long long v = (unsigned long long)desktop_id & 0xffffffffULL;
    snprintf(out, 18, "02:b1:%02llx:%02llx:%02llx:%02llx", (v >> 24) & 255, (v >> 16) & 255,
             (v >> 8) & 255, v & 255);
}

long long sriov_pf_cap(int per_gbps, long long speed_mbps)
{
    long long mbps = speed_mbps < 1000 ? 1000 : speed_mbps;
    return (long long)per_gbps * mbps / 1000; /* the same figure as SERVER_LOAD_COLS */
}

bic_err sriov_pick(bic_db *db, bic_arena *a, long long server_id, int per_gbps, sriov_vf *vf,
                   bool *found)
{
    bic_rows pf;
    *found = false;
    bic_err e = DB_EXEC(db, a, STMT_vf_pf_candidates, &pf, P_INT(server_id));
    if (e != BIC_E_OK) return e;
    /* PFs by the share of their capacity in use, lowest first; full or VF-less ones last */
    size_t n = pf.nrows, *order = arena_alloc(a, (n + 1) * sizeof(*order));
    double *share = arena_alloc(a, (n + 1) * sizeof(*share));
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        long long cap = sriov_pf_cap(per_gbps, rows_int(&pf, i, 1));
        long long held = rows_int(&pf, i, 2), free_vfs = rows_int(&pf, i, 3);
        if (free_vfs < 1 || held >= cap) continue;
        share[i] = (double)held / (double)cap;
        size_t j = m++;
        while (j > 0 && share[order[j - 1]] > share[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (size_t k = 0; k < m; k++) {
        bic_rows l, v;
        const char *nic = rows_str(&pf, order[k], 0);
        /* the counts above were read unlocked: count again under the PF's lock */
        e = DB_EXEC(db, a, STMT_vf_pf_lock, &l, P_INT(server_id), P_STR(nic));
        if (e != BIC_E_OK) return e;
        if (l.nrows != 1 || rows_int(&l, 0, 1) ||
            rows_int(&l, 0, 2) >= sriov_pf_cap(per_gbps, rows_int(&l, 0, 0)))
            continue;
        e = DB_EXEC(db, a, STMT_vf_lock_free, &v, P_INT(server_id), P_STR(nic));
        if (e != BIC_E_OK) return e;
        if (v.nrows != 1) continue; /* every free one is being taken by someone else */
        *vf = (sriov_vf){.id = rows_int(&v, 0, 0),
                         .index = rows_int(&v, 0, 2),
                         .nic = arena_strdup(a, nic),
                         .pci = arena_strdup(a, rows_str(&v, 0, 1))};
        *found = true;
        return BIC_E_OK;
    }
    return BIC_E_OK;
}

bic_err sriov_claim(bic_db *db, bic_arena *a, const sriov_vf *vf, long long desktop_id,
                    const char *mac, long long vlan)
{
    bic_err e = DB_EXEC(db, a, STMT_vf_claim, NULL, P_INT(desktop_id), P_STR(mac),
                        vlan > 0 ? P_INT(vlan) : P_NULL, P_INT(vf->id));
    if (e != BIC_E_OK) return e;
    if (db_affected(db) != 1) {
        LOG_ERROR(NULL, "VF %lld (%s) was taken under a lock we held: not claimed", vf->id,
                  vf->pci);
        return BIC_E_CONFLICT;
    }
    return BIC_E_OK;
}
