#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bic_err param_id(bic_req *req, size_t i, long long *out)
{
    const char *s = i < req->nparams ? req->param[i] : NULL;
    char *end;
    errno = 0;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || errno || *end || v <= 0 || s[0] == '+' || s[0] == '0')
        return fail(req, BIC_E_NOT_FOUND, "no such resource");
    *out = v;
    return BIC_E_OK;
}

bic_err query_int(bic_req *req, const char *name, long long def, long long max, long long *out)
{
    const char *s = req_query(req, name);
    if (!s || !*s) {
        *out = def;
        return BIC_E_OK;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < 0 || v > max)
        return fail(req, BIC_E_VALIDATION, "query parameter '%s' must be an integer from 0 to %lld",
                    name, max);
    *out = v;
    return BIC_E_OK;
}

bic_err query_page(bic_req *req, long long def, long long max, const char *cursor,
                   long long cursor_def, long long *limit, long long *cursor_val)
{
    bic_err e = query_int(req, "limit", def, max, limit);
    if (e == BIC_E_OK) e = query_int(req, cursor, cursor_def, 1LL << 62, cursor_val);
    if (e == BIC_E_OK && *limit == 0) *limit = def;
    return e;
}

json_t *page_next(const bic_rows *rows, long long limit)
{
    if (rows->nrows == 0 || rows->nrows != (size_t)limit) return json_null();
    return json_integer(rows_int(rows, rows->nrows - 1, 0));
}

void resp_page(bic_req *req, bic_resp *resp, const bic_rows *rows, row_json_fn fn, long long limit,
               const char *next_key)
{
    json_t *items = json_array();
    for (size_t i = 0; i < rows->nrows; i++)
        json_array_append_new(items, fn(req, rows, i));
    resp_json(req, resp, 200,
              json_pack("{s:o, s:o}", "items", items, next_key, page_next(rows, limit)));
}

json_t *json_time(bic_req *req, const char *t)
{
    if (!t) return json_null();
    char *s = arena_printf(req->arena, "%sZ", t);
    char *sp = strchr(s, ' ');
    if (sp) *sp = 'T';
    return json_string(s);
}

const char *like_prefix(bic_req *req, const char *s)
{
    if (!s) return NULL;
    size_t n = strlen(s);
    char *out = arena_alloc(req->arena, 2 * n + 2), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' || s[i] == '_' || s[i] == '\\') *o++ = '\\';
        *o++ = s[i];
    }
    *o++ = '%';
    *o = '\0';
    return out;
}

int parse_bool(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "1") || !strcmp(s, "true")) return 1;
    if (!strcmp(s, "0") || !strcmp(s, "false")) return 0;
    return -1;
}

bic_err query_id(bic_req *req, const char *name, const char **out)
{
    const char *v = req_query(req, name);
    *out = v && *v ? v : NULL;
    char *end;
    if (*out && (strtoll(*out, &end, 10) <= 0 || *end))
        return fail(req, BIC_E_VALIDATION, "%s must be an id", name);
    return BIC_E_OK;
}
