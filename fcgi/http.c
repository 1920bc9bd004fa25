#include "http.h"

#include <ctype.h>
#include <fcgiapp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static const char *const role_names[ROLE__MAX] = {"anonymous", "user",  "operator", "admin",
                                                  "enroll",    "agent", "scraper"};
static const char *const method_names[M__MAX] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

const char *role_name(bic_role r)
{
    return r < ROLE__MAX ? role_names[r] : "unknown";
}

bic_role role_parse(const char *s)
{
    for (int r = ROLE_USER; s && r <= ROLE_ADMIN; r++)
        if (!strcmp(s, role_names[r])) return (bic_role)r;
    return ROLE__MAX;
}

const char *method_name(bic_method m)
{
    return m < M__MAX ? method_names[m] : "?";
}

const char *const http_security_headers[] = {
    "X-Content-Type-Options: nosniff",
    "X-Frame-Options: DENY",
    "Referrer-Policy: no-referrer",
    "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'",
    "Cross-Origin-Resource-Policy: same-origin",
    "Cache-Control: no-store",
    NULL,
};

void resp_json(bic_req *req, bic_resp *resp, int status, json_t *body)
{
    resp->status = status;
    resp->body = arena_defer(req->arena, (void (*)(void *))json_decref, body);
}

void resp_header(bic_req *req, bic_resp *resp, const char *fmt, ...)
{
    if (resp->nheaders >= BIC_MAX_HEADERS) {
        LOG_ERROR(req->request_id, "too many response headers");
        return;
    }
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *line = arena_alloc(req->arena, n > 0 ? (size_t)n + 1 : 1);
    vsnprintf(line, n > 0 ? (size_t)n + 1 : 1, fmt, ap2);
    va_end(ap2);
    resp->header[resp->nheaders++] = line;
}

bic_err fail_at(bic_req *req, bic_err code, const char *file, int line, const char *func,
                const char *fmt, ...)
{
    char buf[sizeof(req->err_msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (bic_err_status(code) >= 500) {
        log_msg(BIC_LOG_ERROR, req->request_id, file, line, func, "%s", buf);
        req->err_msg[0] = '\0';
    } else {
        memcpy(req->err_msg, buf, sizeof(buf));
    }
    return code;
}

void resp_error(bic_req *req, bic_resp *resp, bic_err code)
{
    /* 5xx: only the safe default text, whatever an earlier fail() recorded */
    const char *msg =
        req->err_msg[0] && bic_err_status(code) < 500 ? req->err_msg : bic_err_message(code);
    json_t *err = json_pack("{s:s, s:s, s:s}", "code", bic_err_name(code), "message", msg,
                            "request_id", req->request_id);
    if (!err) /* message was not valid UTF-8 */
        err = json_pack("{s:s, s:s, s:s}", "code", bic_err_name(code), "message",
                        bic_err_message(code), "request_id", req->request_id);
    if (req->err_reason) json_object_set_new(err, "reason", json_string(req->err_reason));
    resp_json(req, resp, bic_err_status(code), json_pack("{s:o}", "error", err));
    if (code == BIC_E_RATE_LIMITED || code == BIC_E_LOCKED || code == BIC_E_DB_UNAVAILABLE ||
        code == BIC_E_UNAVAILABLE) {
        bool has = false;
        for (size_t i = 0; i < resp->nheaders; i++)
            if (!strncasecmp(resp->header[i], "Retry-After:", 12)) has = true;
        if (!has) resp_header(req, resp, "Retry-After: %d", code == BIC_E_LOCKED ? 30 : 1);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes %XX and '+' into the arena; NULL when a %-escape is malformed. */
static char *url_decode(bic_arena *a, const char *s, size_t n)
{
    char *out = arena_alloc(a, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) return NULL;
            int h = hexval((unsigned char)s[i + 1]), l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0) return NULL;
            *o++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    if (strlen(out) != (size_t)(o - out)) return NULL; /* embedded NUL */
    return out;
}

const char *req_query(bic_req *req, const char *name)
{
    const char *q = req->query;
    size_t nlen = strlen(name);
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t seg = amp ? (size_t)(amp - q) : strlen(q);
        if (seg > nlen && !strncmp(q, name, nlen) && q[nlen] == '=')
            return url_decode(req->arena, q + nlen + 1, seg - nlen - 1);
        if (seg == nlen && !strncmp(q, name, nlen)) return "";
        q = amp ? amp + 1 : NULL;
    }
    return NULL;
}

const char *req_cookie(bic_req *req, const char *name)
{
    const char *c = req->cookie;
    size_t nlen = strlen(name);
    while (c && *c) {
        while (*c == ' ' || *c == ';')
            c++;
        const char *semi = strchr(c, ';');
        size_t seg = semi ? (size_t)(semi - c) : strlen(c);
        if (seg > nlen && !strncmp(c, name, nlen) && c[nlen] == '=')
            return arena_strndup(req->arena, c + nlen + 1, seg - nlen - 1);
        c = semi;
    }
    return NULL;
}

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 423:
        return "Locked";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "OK";
    }
}

void http_write(bic_req *req, const bic_resp *resp)
{
    FCGX_Request *f = req->fcgx;
    if (!f) return;
    int status = resp->status ? resp->status : 200;
    char *body = NULL;
    const char *ctype = "application/json";
    if (resp->raw) {
        body = (char *)resp->raw;
        ctype = resp->content_type ? resp->content_type : "text/plain; charset=utf-8";
    } else if (resp->body) {
        body = json_dumps(resp->body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    size_t n = status == 204 || !body ? 0 : strlen(body);
    /* libfcgi's own printf lacks C99 conversions: format with the C library */
    char head[4096];
    int len = snprintf(head, sizeof(head), "Status: %d %s\r\nX-Request-Id: %s\r\n", status,
                       reason(status), req->request_id);
    for (size_t i = 0; http_security_headers[i] && len < (int)sizeof(head); i++)
        len += snprintf(head + len, sizeof(head) - (size_t)len, "%s\r\n", http_security_headers[i]);
    for (size_t i = 0; i < resp->nheaders && len < (int)sizeof(head); i++)
        len += snprintf(head + len, sizeof(head) - (size_t)len, "%s\r\n", resp->header[i]);
    if (len < (int)sizeof(head)) {
        if (n)
            len += snprintf(head + len, sizeof(head) - (size_t)len,
                            "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", ctype, n);
        else
            len += snprintf(head + len, sizeof(head) - (size_t)len, "Content-Length: 0\r\n\r\n");
    }
    if (len >= (int)sizeof(head)) {
        LOG_ERROR(req->request_id, "response headers longer than %zu bytes", sizeof(head));
        len = snprintf(head, sizeof(head), "Status: 500 Internal Server Error\r\n\r\n");
        n = 0;
    }
    FCGX_PutStr(head, len, f->out);
    if (n) FCGX_PutStr(body, (int)n, f->out);
    if (body && body != resp->raw) free(body);
}
