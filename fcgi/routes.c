#include "routes.h"

#include <stdio.h>
#include <string.h>

#include "handlers.h"

#define ROUTE(m, p, h, r, lim, f, s) {M_##m, p, h, #h, ROLE_##r, lim, f, s},
const bic_route bic_routes[] = {
#include "routes.def"
};
#undef ROUTE
const size_t bic_nroutes = sizeof(bic_routes) / sizeof(bic_routes[0]);

bic_method method_parse(const char *s)
{
    for (int m = 0; s && m < M__MAX; m++)
        if (!strcmp(s, method_name((bic_method)m))) return (bic_method)m;
    return M__MAX;
}

/* Matches one pattern; fills params when req is not NULL. */
static int path_matches(const char *pat, const char *path, bic_req *req)
{
    size_t np = 0;
    while (*pat && *path) {
        if (*pat == '{') {
            const char *pend = strchr(pat, '}');
            const char *send = strchr(path, '/');
            if (!pend) return 0;
            if (!send) send = path + strlen(path);
            if (send == path || np >= BIC_MAX_PATH_PARAMS) return 0;
            if (req) req->param[np] = arena_strndup(req->arena, path, (size_t)(send - path));
            np++;
            pat = pend + 1;
            path = send;
            continue;
        }
        if (*pat != *path) return 0;
        pat++;
        path++;
    }
    if (*pat || *path) return 0;
    if (req) req->nparams = np;
    return 1;
}

const bic_route *route_match(bic_req *req, bic_method method, const char *path, bic_err *why,
                             char *allow, size_t allowlen)
{
    bool path_seen = false;
    if (allowlen) allow[0] = '\0';
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        if (!path_matches(r->path, path, NULL)) continue;
        if (r->method == method) {
            path_matches(r->path, path, req);
            return r;
        }
        path_seen = true;
        size_t used = strlen(allow);
        if (used + 8 < allowlen)
            snprintf(allow + used, allowlen - used, "%s%s", used ? ", " : "",
                     method_name(r->method));
    }
    *why = path_seen ? BIC_E_METHOD_NOT_ALLOWED : BIC_E_NOT_FOUND;
    return NULL;
}

json_t *routes_json(void)
{
    json_t *a = json_array();
    for (size_t i = 0; i < bic_nroutes; i++) {
        const bic_route *r = &bic_routes[i];
        json_t *fields = json_array();
        for (const bic_field *f = r->fields; f && f->name; f++) {
            json_t *choices = json_array();
            for (const char *const *c = f->choices; c && *c; c++)
                json_array_append_new(choices, json_string(*c));
            json_array_append_new(
                fields, json_pack("{s:s, s:s, s:b, s:I, s:I, s:o, s:b}", "name", f->name, "type",
                                  json_ftype_name(f->type), "required", f->required, "min", f->min,
                                  "max", f->max, "choices", choices, "nullable", f->nullable));
        }
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:s}", "method",
                                           method_name(r->method), "path", r->path, "handler",
                                           r->handler_name, "role", role_name(r->role),
                                           "body_limit", (json_int_t)r->body_limit, "fields",
                                           fields, "summary", r->summary));
    }
    return a;
}
