#include "dispatch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "log.h"
#include "routes.h"
#include "agentauth.h"
#include "session.h"

bic_err (*dispatch_read_body)(bic_req *req);

const bic_field fields_upload[] = {{0}};

static bool is_json_type(const char *ct)
{
    if (!ct) return false;
    size_t n = strlen("application/json");
    return !strncasecmp(ct, "application/json", n) && (ct[n] == '\0' || ct[n] == ';');
}

static bic_err run(bic_req *req, bic_resp *resp)
{
    char allow[64];
    bic_err why = BIC_E_OK;
    req->method = method_parse(req->method_str);
    if (req->agent_only && strncmp(req->path ? req->path : "", "/api/v1/agent/", 14) != 0)
        return fail(req, BIC_E_NOT_FOUND, "the agents' socket serves the agent routes only");
    const bic_route *r =
        route_match(req, req->method, req->path ? req->path : "", &why, allow, sizeof(allow));
    if (!r) {
        if (why == BIC_E_METHOD_NOT_ALLOWED) {
            resp_header(req, resp, "Allow: %s", allow);
            return fail(req, why, "%s is not allowed here; use %s",
                        req->method_str ? req->method_str : "?", allow);
        }
        return fail(req, why, "no route for this path");
    }
    if (req->agent_only && r->role != ROLE_AGENT && r->role != ROLE_ENROLL)
        return fail(req, BIC_E_NOT_FOUND, "the agents' socket serves the agent routes only");
    req->route = r;
    bool upload = r->fields == fields_upload;
    if (!upload) req->upload_file = NULL; /* only upload routes ever see a stored file */
    /* nginx stored the body (or asks before it does): its client_max_body_size is the limit */
    bool stored = upload && (req->upload_file || req->upload_check);
    if (!stored && req->content_length > (long long)r->body_limit)
        return fail(req, BIC_E_TOO_LARGE, "the body may be at most %zu bytes", r->body_limit);

    bic_err e = BIC_E_OK;
    switch (r->role) {
    case ROLE_ENROLL:
        break; /* the handler checks the enrollment token */
    case ROLE_AGENT:
        e = agent_identify(req);
        break;
    case ROLE_SCRAPER:
        e = metrics_authorize(req);
        break;
    default:
        e = session_identify(req, resp);
        if (e != BIC_E_OK) return e;
        if (req->who.role < r->role) {
            if (req->who.role == ROLE_ANON)
                return fail(req, BIC_E_UNAUTHENTICATED, "sign in first");
            return fail(req, BIC_E_FORBIDDEN, "this needs the %s role", role_name(r->role));
        }
        if (req->method != M_GET) e = session_check_csrf(req);
    }
    if (e != BIC_E_OK) return e;
    /* a check of another route sharing an upload location ends here; the request follows */
    if (req->upload_check && !upload) return BIC_E_OK;
    if (upload) return r->handler(req, resp); /* the body is nginx's file, not ours to read */

    if (req->content_length > 0) {
        if (!is_json_type(req->content_type))
            return fail(req, BIC_E_UNSUPPORTED_MEDIA, "the body must be application/json");
        if (dispatch_read_body) {
            e = dispatch_read_body(req);
            if (e != BIC_E_OK) return e;
        }
    }
    if (r->fields) {
        if (!req->body_len) return fail(req, BIC_E_BAD_JSON, "a JSON body is required");
        json_t *obj = NULL;
        e = json_body_parse(req->body, req->body_len, r->fields, &obj, req->err_msg,
                            sizeof(req->err_msg));
        if (e != BIC_E_OK) return e;
        req->json = arena_defer(req->arena, (void (*)(void *))json_decref, obj);
    } else if (req->body_len) {
        return fail(req, BIC_E_BAD_REQUEST, "this route takes no body");
    }
    return r->handler(req, resp);
}

/*
 * auth_request passes only 401 and 403 on (anything else becomes 500): a refused upload
 * check answers 403 and carries the real status and error body in headers, which nginx
 * answers with instead (@upload_refused in bic.conf.in).
 */
static void refuse_upload(bic_req *req, bic_resp *resp)
{
    char *body = json_dumps(resp->body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    resp_header(req, resp, "X-BIC-Status: %d", resp->status);
    if (body) resp_header(req, resp, "X-BIC-Error: %s", body);
    free(body);
    resp->status = 403;
}

bic_err dispatch(bic_req *req, bic_resp *resp)
{
    bic_err e = run(req, resp);
    if (e != BIC_E_OK)
        resp_error(req, resp, e);
    else if (!resp->status)
        resp->status = resp->body || resp->raw ? 200 : 204;
    if (e != BIC_E_OK && (req->upload_check || req->console_ticket)) refuse_upload(req, resp);
    return e;
}
