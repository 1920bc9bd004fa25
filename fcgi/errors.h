/*
 * errors.h - the one error enum of bicd.
 *
 * Every failure a client can see is one of these codes. BIC_ERRORS is the only
 * declaration: it generates the enum, the HTTP status table, the stable wire
 * names and the default (safe) messages. Library errors are mapped onto it in
 * exactly one place each (db.c for MariaDB, later virt code for libvirt).
 */
#ifndef BIC_ERRORS_H
#define BIC_ERRORS_H

/*  X(enum suffix, HTTP status, stable name, default message) */
#define BIC_ERRORS(X)                                                                              \
    X(OK, 200, "ok", "ok")                                                                         \
    X(BAD_REQUEST, 400, "bad_request", "the request is malformed")                                 \
    X(BAD_JSON, 400, "bad_json", "the request body is not valid JSON")                             \
    X(VALIDATION, 422, "validation_failed", "a field has an invalid value")                        \
    X(UNAUTHENTICATED, 401, "unauthenticated", "sign in first")                                    \
    X(BAD_CREDENTIALS, 401, "bad_credentials", "wrong user name or password")                      \
    X(FORBIDDEN, 403, "forbidden", "you are not allowed to do this")                               \
    X(CSRF, 403, "csrf_failed", "missing or wrong CSRF token or Origin")                           \
    X(NOT_FOUND, 404, "not_found", "no such resource")                                             \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed", "method not allowed on this path")            \
    X(CONFLICT, 409, "conflict", "the resource already exists or was changed")                     \
    X(TOO_LARGE, 413, "payload_too_large", "the request body is too large")                        \
    X(UNSUPPORTED_MEDIA, 415, "unsupported_media_type", "send application/json")                   \
    X(LOCKED, 423, "account_locked", "too many failed attempts; try again later")                  \
    X(RATE_LIMITED, 429, "rate_limited", "too many requests; slow down")                           \
    X(INTERNAL, 500, "internal", "internal error")                                                 \
    X(DB_UNAVAILABLE, 503, "database_unavailable", "the database is unreachable")                  \
    X(UNAVAILABLE, 503, "unavailable", "the service is temporarily unavailable")

typedef enum {
#define BIC_X_ENUM(name, status, wire, msg) BIC_E_##name,
    BIC_ERRORS(BIC_X_ENUM)
#undef BIC_X_ENUM
        BIC_E__MAX
} bic_err;

/* HTTP status of an error code (500 for anything out of range). */
int bic_err_status(bic_err e);
/* Stable wire name, e.g. "not_found". Static storage. */
const char *bic_err_name(bic_err e);
/* Default client-safe message. Static storage. */
const char *bic_err_message(bic_err e);

#endif
