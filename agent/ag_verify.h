/*
 * ag_verify.h - the acceptance rules for a task or a call CCC sends to the
 * listener (docs/agent-protocol.md, "Tasks" and "Calls"): signature, then body
 * shape, then server_id, then issued_at, then the nonce. A task has a task_id
 * from 1, a call task_id 0, so that neither body is taken for the other.
 */
#ifndef BIC_AG_VERIFY_H
#define BIC_AG_VERIFY_H

#include <jansson.h>
#include <stddef.h>

#include "ag_nonce.h"
#include "ag_sig.h"

#define AG_TASK_SKEW_S   120 /* issued_at must be within this of the agent's clock */
#define AG_TASK_BODY_MAX 65536
#define AG_TASK_TYPE_MAX 63
#define AG_NONCE_MIN_LEN 22
#define AG_NONCE_MAX_LEN 128

/* X(verdict, HTTP status, stable name for the answer {"error": name}) */
#define AG_VERDICTS(X)                                                                             \
    X(AG_V_OK, 202, "accepted")                                                                    \
    X(AG_V_BAD_REQUEST, 400, "bad_task")                                                           \
    X(AG_V_BAD_SIGNATURE, 401, "bad_signature")                                                    \
    X(AG_V_STALE, 401, "bad_time")                                                                 \
    X(AG_V_REPLAY, 401, "nonce_reused")                                                            \
    X(AG_V_WRONG_SERVER, 409, "wrong_server")                                                      \
    X(AG_V_TOO_LARGE, 413, "body_too_large")                                                       \
    X(AG_V_NOT_ENROLLED, 503, "not_enrolled")                                                      \
    X(AG_V_BUSY, 503, "busy")                                                                      \
    X(AG_V_STORAGE, 503, "cannot_record")

typedef enum ag_verdict {
#define AG_X_ENUM(v, status, name) v,
    AG_VERDICTS(AG_X_ENUM)
#undef AG_X_ENUM
        AG_V__MAX
} ag_verdict;

int ag_verdict_status(ag_verdict v);
const char *ag_verdict_name(ag_verdict v);

/* A verified task or call (task_id 0). params is owned (an object, {} when the body had none). */
typedef struct ag_task_req {
    long long task_id, server_id, issued_at;
    char type[AG_TASK_TYPE_MAX + 1];
    char nonce[AG_NONCE_MAX_LEN + 1];
    json_t *params;
} ag_task_req;

void ag_task_req_clear(ag_task_req *t);

/*
 * Checks one task request against the agent's identity:
 *   key        CCC's Ed25519 public key (from enrollment)
 *   server_id  this agent's server id
 *   nonces     the replay cache (a nonce is recorded only when all else passed)
 *   now        the agent's clock, seconds since the epoch
 * Returns AG_V_OK and fills *out (clear it with ag_task_req_clear), or the
 * verdict that refuses the request with a reason in why (safe to log).
 */
ag_verdict ag_verify_task(const unsigned char key[AG_SIG_KEY_LEN], long long server_id,
                          ag_nonces *nonces, long long now, const char *body, size_t len,
                          const char *sig_b64, ag_task_req *out, char *why, size_t whylen);

/* ag_verify_task for a call: the same checks, with task_id 0. */
ag_verdict ag_verify_call(const unsigned char key[AG_SIG_KEY_LEN], long long server_id,
                          ag_nonces *nonces, long long now, const char *body, size_t len,
                          const char *sig_b64, ag_task_req *out, char *why, size_t whylen);

/*
 * Parses the body of a task without checking anything but its shape. Used by
 * ag_verify_task after the signature check, exported for tests. Returns 0 or -1
 * with why.
 */
int ag_task_req_parse(const char *body, size_t len, ag_task_req *out, char *why, size_t whylen);

#endif
