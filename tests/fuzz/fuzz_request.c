/*
 * fuzz_request - the request parser: method and path against the real route table
 * (route_match and its path parameters), query strings and cookies (req_query,
 * req_cookie, query_int/query_page/query_id, param_id), then the whole dispatch()
 * of an anonymous caller (body limit, identity from the session cookie, Origin/CSRF,
 * content type, the route's JSON body check, and for the routes that anyone may call
 * the handler's own input checks up to its first statement).
 *
 * Input: lines  method, path, query, cookie, origin, x-csrf-token, authorization,
 * content-type, remote address, console ticket (nginx's BIC_CONSOLE_TICKET),
 * upload check ("1"); the rest is the body.
 *
 * Besides memory and UB errors (ASan, UBSan), it aborts when
 *  - an answer is 2xx on a route that needs a signed-in user (nobody is signed in here:
 *    the fuzzer cannot sign a session token), or any answer is outside 200..599;
 *  - a response header holds CR or LF (header injection);
 *  - route_match() gives a route whose pattern does not match the path, or path
 *    parameters that are empty or contain '/'.
 */
#include <stdio.h>
#include <string.h>

#include "dispatch.h"
#include "fuzz_bicd.h"
#include "fuzz_common.h"
#include "routes.h"
#include "util.h"

enum { F_METHOD, F_PATH, F_QUERY, F_COOKIE, F_ORIGIN, F_CSRF, F_AUTH, F_CTYPE, F_REMOTE, F_TICKET,
       F_UPLOAD_CHECK, F__N };

static const char *const query_names[] = {
    "actor", "after", "before", "building_block", "code", "disabled", "error", "error_description",
    "iss", "limit", "maintenance", "module", "notes", "pool", "portal", "q", "role", "server",
    "state", "target_id", "until", NULL};

static void check_params(bic_req *req, const bic_route *r)
{
    /* every {name} of the pattern took one non-empty segment without '/' */
    size_t want = 0;
    for (const char *p = r->path; *p; p++)
        if (*p == '{') want++;
    if (req->nparams != want) abort();
    for (size_t i = 0; i < req->nparams; i++)
        if (!req->param[i] || !req->param[i][0] || strchr(req->param[i], '/')) abort();
}

static void parsers(bic_req *req)
{
    long long v;
    const char *s;
    for (const char *const *n = query_names; *n; n++) {
        s = req_query(req, *n);
        if (s && strlen(s) > strlen(req->query ? req->query : "")) abort(); /* decoding never grows */
        query_int(req, *n, 0, 1000, &v);
        query_id(req, *n, &s);
    }
    query_page(req, 100, 500, "after", 0, &v, &v);
    for (size_t i = 0; i < BIC_MAX_PATH_PARAMS; i++)
        param_id(req, i, &v);
    req_cookie(req, "__Host-bic_session");
    req_cookie(req, "__Host-bic_refresh");
    req_cookie(req, "__Host-bic_csrf");
    like_prefix(req, req->query);
    parse_bool(req->query);
}

static void fill(bic_req *req, const fz_input *in, bic_arena *a)
{
    memset(req, 0, sizeof(*req));
    req->arena = a;
    req->db = fz_db;
    req->cfg = &fz_cfg;
    req->method_str = fz_opt(in, F_METHOD);
    req->path = in->field[F_PATH];
    req->query = fz_opt(in, F_QUERY);
    req->cookie = fz_opt(in, F_COOKIE);
    req->origin = fz_opt(in, F_ORIGIN);
    req->csrf_header = fz_opt(in, F_CSRF);
    req->authorization = fz_opt(in, F_AUTH);
    req->content_type = fz_opt(in, F_CTYPE);
    req->remote_addr = fz_opt(in, F_REMOTE) ? fz_opt(in, F_REMOTE) : "127.0.0.1";
    req->console_ticket = fz_opt(in, F_TICKET);
    req->upload_check = in->field[F_UPLOAD_CHECK][0] == '1';
    req->host = FZ_HOST;
    req->body = in->rest;
    req->body_len = in->rest_len;
    req->content_length = in->rest_len ? (long long)in->rest_len : -1;
    snprintf(req->request_id, sizeof(req->request_id), "fuzz-request-0001");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_bicd_init();
    fz_input in;
    fz_split(&in, data, size, F__N);
    bic_arena *a = arena_new(0);
    bic_req req;
    bic_resp resp;

    /* the matcher alone, for every method */
    fill(&req, &in, a);
    for (int m = 0; m < M__MAX; m++) {
        bic_err why = BIC_E_OK;
        char allow[64];
        const bic_route *r = route_match(&req, (bic_method)m, req.path, &why, allow, sizeof(allow));
        if (r) {
            if (r->method != (bic_method)m) abort();
            check_params(&req, r);
            parsers(&req);
        } else if (why != BIC_E_NOT_FOUND && why != BIC_E_METHOD_NOT_ALLOWED) {
            abort();
        }
    }
    parsers(&req);

    /* the whole dispatch, as an anonymous caller */
    fill(&req, &in, a);
    memset(&resp, 0, sizeof(resp));
    dispatch(&req, &resp);
    if (resp.status < 200 || resp.status > 599) abort();
    if (req.route && req.route->role >= ROLE_USER && req.route->role <= ROLE_ADMIN &&
        resp.status < 300)
        abort(); /* nobody is signed in */
    for (size_t i = 0; i < resp.nheaders; i++)
        if (strpbrk(resp.header[i], "\r\n")) abort();
    if (resp.body) {
        char *s = json_dumps(resp.body, JSON_COMPACT);
        free(s);
    }
    arena_free(a);
    fz_free(&in);
    return 0;
}
