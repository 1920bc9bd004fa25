/*
 * routes.h - the route table (generated from routes.def) and path matching.
 */
#ifndef BIC_ROUTES_H
#define BIC_ROUTES_H

#include <stddef.h>

#include "http.h"
#include "json.h"

struct bic_route {
    bic_method method;
    const char *path;
    bic_handler handler;
    const char *handler_name;
    bic_role role;
    size_t body_limit;
    const bic_field *fields;
    const char *summary;
};

extern const bic_route bic_routes[];
extern const size_t bic_nroutes;

/* Parses an HTTP method name; returns M__MAX for one bicd never serves. */
bic_method method_parse(const char *s);

/*
 * Finds the route for method and path. On success returns it and fills
 * req->param/nparams (arena copies). Otherwise returns NULL and *why is
 * BIC_E_NOT_FOUND (no route has this path) or BIC_E_METHOD_NOT_ALLOWED, in
 * which case allow receives the comma-separated methods the path supports.
 */
const bic_route *route_match(bic_req *req, bic_method method, const char *path, bic_err *why,
                             char *allow, size_t allowlen);

/* The route table as a JSON array (for `bicd routes`, tests and docs). New reference. */
json_t *routes_json(void);

#endif
