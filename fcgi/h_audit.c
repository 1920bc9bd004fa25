/*
 * h_audit.c - GET /api/v1/audit: the audit log, filtered and paged on the server.
 */
#include <string.h>

#include "handlers.h"
#include "util.h"

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/*
 * Accepts "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.f{1,3}]Z" (UTC) with every field
 * in range, and returns MariaDB's "YYYY-MM-DD[ HH:MM:SS[.fff]]" in the arena, or NULL.
 */
static const char *sql_time(bic_req *req, const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t n = strlen(s);
    if (n < 10 || !all_digits(s, 4) || s[4] != '-' || !all_digits(s + 5, 2) || s[7] != '-' ||
        !all_digits(s + 8, 2))
        return NULL;
    int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !leap))
        return NULL;
    if (n == 10) return arena_strndup(req->arena, s, 10);
    if (n < 20 || s[10] != 'T' || !all_digits(s + 11, 2) || s[13] != ':' ||
        !all_digits(s + 14, 2) || s[16] != ':' || !all_digits(s + 17, 2) || s[n - 1] != 'Z')
        return NULL;
    if (num(s + 11, 2) > 23 || num(s + 14, 2) > 59 || num(s + 17, 2) > 59) return NULL;
    size_t frac = 0;
    if (n > 20) { /* ".f" to ".fff" before the Z */
        if (s[19] != '.') return NULL;
        frac = n - 21;
        if (frac < 1 || frac > 3 || !all_digits(s + 20, frac)) return NULL;
    }
    char *out = arena_strndup(req->arena, s, n - 1);
    out[10] = ' ';
    return out;
}

bic_err h_audit_list(bic_req *req, bic_resp *resp)
{
    long long limit, before;
    bic_err e = query_page(req, 100, 1000, "before", 1LL << 62, &limit, &before);
    if (e != BIC_E_OK) return e;
    const char *f[4] = {req_query(req, "action"), req_query(req, "actor"),
                        req_query(req, "target_type"), req_query(req, "target_id")};
    for (int i = 0; i < 4; i++)
        if (f[i] && !*f[i]) f[i] = NULL;
    const char *since = req_query(req, "since"), *until = req_query(req, "until");
    const char *s1 = since && *since ? sql_time(req, since) : NULL;
    const char *s2 = until && *until ? sql_time(req, until) : NULL;
    if ((since && *since && !s1) || (until && *until && !s2))
        return fail(
            req, BIC_E_VALIDATION,
            "since and until must be dates (2026-01-31) or UTC times (2026-01-31T08:00:00Z)");
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_audit_list, &rows, P_INT(before), P_STR(f[0]),
                P_STR(f[0]), P_STR(f[1]), P_STR(f[1]), P_STR(f[2]), P_STR(f[2]), P_STR(f[3]),
                P_STR(f[3]), P_STR(s1), P_STR(s1), P_STR(s2), P_STR(s2), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "audit query failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++) {
        json_error_t jerr;
        json_t *summary = json_loads(rows_str(&rows, i, 7), 0, &jerr);
        json_array_append_new(
            items,
            json_pack("{s:I, s:o, s:s, s:s, s:s, s:s, s:b, s:o, s:s}", "id",
                      (json_int_t)rows_int(&rows, i, 0), "at",
                      json_time(req, rows_str(&rows, i, 1)), "actor_name", rows_str(&rows, i, 2),
                      "action", rows_str(&rows, i, 3), "target_type", rows_str(&rows, i, 4),
                      "target_id", rows_str(&rows, i, 5), "success", rows_int(&rows, i, 6) != 0,
                      "summary", summary ? summary : json_object(), "source_ip",
                      rows_str(&rows, i, 8)));
    }
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o}", "items", items, "next_before", page_next(&rows, limit)));
    return BIC_E_OK;
}
