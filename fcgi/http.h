/*
 * http.h - the request and response every handler sees, and the one writer.
 *
 * A handler has the signature bic_handler: it reads the parsed request, fills
 * the response (status and a JSON body) and returns BIC_E_OK, or returns the
 * error code from fail()/db calls; dispatch then builds the error body
 * {"error":{"code","message","request_id"}} with resp_error(). http_write() is
 * the only code that writes to the FastCGI stream; it always adds the security
 * headers.
 */
#ifndef BIC_HTTP_H
#define BIC_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "arena.h"
#include "config.h"
#include "db.h"
#include "errors.h"
#include "json.h"

/*
 * Who may call a route. ANON..ADMIN are the user hierarchy (a higher role may do
 * what a lower one may). The machine callers stand outside it: ENROLL (an agent
 * presenting an enrollment token in the body), AGENT (an enrolled agent with its
 * bearer credential), SCRAPER (a metrics collector with the metrics token or from
 * a management network). Machine routes carry no cookies and need no CSRF token.
 */
typedef enum {
    ROLE_ANON = 0,
    ROLE_USER,
    ROLE_OPERATOR,
    ROLE_ADMIN,
    ROLE_ENROLL,
    ROLE_AGENT,
    ROLE_SCRAPER,
    ROLE__MAX
} bic_role;
const char *role_name(bic_role r);
/* Parses "user"/"operator"/"admin"; returns ROLE__MAX when unknown. */
bic_role role_parse(const char *s);

typedef enum { M_GET, M_POST, M_PUT, M_PATCH, M_DELETE, M__MAX } bic_method;
const char *method_name(bic_method m);

/* The signed-in caller, filled by auth before dispatch. user_id 0 = anonymous. */
typedef struct {
    long long user_id;
    long long session_id;
    const char *username;
    const char *display_name;
    const char *csrf;    /* the session's CSRF token */
    time_t token_exp;    /* when the access token expires */
    long long server_id; /* an authenticated agent: its server */
    bic_role role;
} bic_principal;

#define BIC_MAX_PATH_PARAMS 4
#define BIC_MAX_HEADERS     8

typedef struct bic_route bic_route;

typedef struct bic_req {
    /* from the web server */
    const char *method_str, *path, *query, *remote_addr;
    const char *origin, *host, *cookie, *csrf_header, *content_type, *user_agent;
    const char *authorization;  /* Authorization header (agents, scrapers) */
    const char *content_sha256; /* X-BIC-SHA256 header (capture uploads) */
    long long content_length;   /* -1 when absent */
    /*
     * Upload routes only (fields_upload): the file nginx stored the body in (BIC_UPLOAD_FILE);
     * dispatch clears it on every other route. upload_check: nginx's auth_request before it
     * stores a body (BIC_UPLOAD_CHECK): run the checks that need no file, touch no file.
     */
    const char *upload_file;
    bool upload_check;
    /*
     * nginx's console check only (BIC_CONSOLE_TICKET, the auth_request of /console/<ticket>):
     * the ticket. Refusals are answered like upload checks (403 + X-BIC-Status/X-BIC-Error).
     */
    const char *console_ticket;
    /* served on the agents' listener ([server] agent_socket): agent routes only */
    bool agent_only;
    bic_method method;
    char request_id[40];
    /* from dispatch */
    const bic_route *route;
    const char *param[BIC_MAX_PATH_PARAMS];
    size_t nparams;
    char *body;
    size_t body_len;
    json_t *json; /* the validated body, when the route declares fields; borrowed */
    bic_principal who;
    /* per worker */
    bic_arena *arena;
    bic_db *db;
    const bic_config *cfg;
    void *fcgx; /* FCGX_Request *, NULL in unit tests */
    struct timespec started;
    /* the error recorded by fail() */
    char err_msg[256];
    /* a stable reason added to the error body (broker refusals), or NULL */
    const char *err_reason;
} bic_req;

typedef struct bic_resp {
    int status;
    json_t *body;             /* owned by the arena once set with resp_json() */
    const char *raw;          /* alternative to body (e.g. text/plain) */
    const char *content_type; /* for raw */
    const char *header[BIC_MAX_HEADERS];
    size_t nheaders;
} bic_resp;

typedef bic_err (*bic_handler)(bic_req *req, bic_resp *resp);

/*
 * The field table of an upload route: nginx stores the body in a file and passes its
 * path (req->upload_file) instead of the bytes, so dispatch never reads a body or checks
 * its type there, and once nginx stored it, nginx's client_max_body_size is the limit
 * instead of the route's. Empty.
 */
extern const bic_field fields_upload[];

/* Sets a JSON body (stolen, released with the arena) and the status. */
void resp_json(bic_req *req, bic_resp *resp, int status, json_t *body);
/* Adds a header line "Name: value" (formatted in the arena). */
void resp_header(bic_req *req, bic_resp *resp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Records a client-visible error and returns it. For 4xx codes the formatted
 * text becomes the message the client sees; for 5xx codes the client sees the
 * code's default message and the text only goes to the error log.
 */
bic_err fail_at(bic_req *req, bic_err code, const char *file, int line, const char *func,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
#define fail(req, code, ...) fail_at((req), (code), __FILE__, __LINE__, __func__, __VA_ARGS__)

/* Serialises an error body for code into resp (used by dispatch and http_write). */
void resp_error(bic_req *req, bic_resp *resp, bic_err code);

/* Value of query parameter name, percent-decoded into the arena, or NULL. */
const char *req_query(bic_req *req, const char *name);
/* Value of cookie name, or NULL. */
const char *req_cookie(bic_req *req, const char *name);

/* Writes status, headers (security headers first) and body to the FastCGI stream. */
void http_write(bic_req *req, const bic_resp *resp);

/* The security headers every answer carries (NULL-terminated list, for tests). */
extern const char *const http_security_headers[];

#endif
