#include "ag_verify.h"

#include <stdio.h>
#include <string.h>

#include "ag_util.h"

static const struct {
    int status;
    const char *name;
} verdicts[] = {
#define AG_X_ROW(v, status, name) [v] = {status, name},
    AG_VERDICTS(AG_X_ROW)
#undef AG_X_ROW
};

int ag_verdict_status(ag_verdict v)
{
    return v < AG_V__MAX ? verdicts[v].status : 500;
}

const char *ag_verdict_name(ag_verdict v)
{
    return v < AG_V__MAX ? verdicts[v].name : "internal";
}

void ag_task_req_clear(ag_task_req *t)
{
    json_decref(t->params);
    memset(t, 0, sizeof(*t));
}

static int nonce_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < AG_NONCE_MIN_LEN || n > AG_NONCE_MAX_LEN) return 0;
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.~", *s))
            return 0;
    return 1;
}

static int type_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > AG_TASK_TYPE_MAX) return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127) return 0;
    return 1;
}

#define MAX_ID 9007199254740991LL /* 2^53 - 1: what a JSON number holds exactly */

static int parse(const char *body, size_t len, int call, ag_task_req *out, char *why, size_t whylen)
{
    static const char *const known[] = {"task_id", "server_id", "type",
                                        "params",  "issued_at", "nonce"};
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    AG_AUTOJSON json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        snprintf(why, whylen, "body is not a JSON object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        size_t i = 0;
        while (i < AG_NELEM(known) && strcmp(known[i], k))
            i++;
        if (i == AG_NELEM(known)) {
            snprintf(why, whylen, "unknown key '%.40s'", k);
            return -1;
        }
    }
    json_t *id = json_object_get(o, "task_id"), *sid = json_object_get(o, "server_id");
    json_t *type = json_object_get(o, "type"), *params = json_object_get(o, "params");
    json_t *at = json_object_get(o, "issued_at"), *nonce = json_object_get(o, "nonce");
    if (call && (!json_is_integer(id) || json_integer_value(id) != 0)) {
        snprintf(why, whylen, "task_id must be 0 in a call");
        return -1;
    }
    if (!call &&
        (!json_is_integer(id) || json_integer_value(id) < 1 || json_integer_value(id) > MAX_ID)) {
        snprintf(why, whylen, "task_id must be a positive integer");
        return -1;
    }
    if (!json_is_integer(sid) || json_integer_value(sid) < 1 || json_integer_value(sid) > MAX_ID) {
        snprintf(why, whylen, "server_id must be a positive integer");
        return -1;
    }
    if (!json_is_string(type) || !type_ok(json_string_value(type))) {
        snprintf(why, whylen, "type must be a short string");
        return -1;
    }
    if (params && !json_is_object(params) && !json_is_null(params)) {
        snprintf(why, whylen, "params must be an object");
        return -1;
    }
    if (!json_is_integer(at) || json_integer_value(at) < 0 || json_integer_value(at) > MAX_ID) {
        snprintf(why, whylen, "issued_at must be a Unix time");
        return -1;
    }
    if (!json_is_string(nonce) || !nonce_ok(json_string_value(nonce))) {
        snprintf(why, whylen, "nonce must be %d..%d base64/url-safe characters", AG_NONCE_MIN_LEN,
                 AG_NONCE_MAX_LEN);
        return -1;
    }
    out->task_id = json_integer_value(id);
    out->server_id = json_integer_value(sid);
    out->issued_at = json_integer_value(at);
    snprintf(out->type, sizeof(out->type), "%s", json_string_value(type));
    snprintf(out->nonce, sizeof(out->nonce), "%s", json_string_value(nonce));
    out->params = json_is_object(params) ? json_incref(params) : json_object();
    if (!out->params) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    return 0;
}

int ag_task_req_parse(const char *body, size_t len, ag_task_req *out, char *why, size_t whylen)
{
    return parse(body, len, 0, out, why, whylen);
}

static ag_verdict verify(const unsigned char key[AG_SIG_KEY_LEN], long long server_id,
                         ag_nonces *nonces, long long now, const char *body, size_t len,
                         const char *sig_b64, int call, ag_task_req *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof(*out));
    if (len > AG_TASK_BODY_MAX) {
        snprintf(why, whylen, "body of %zu bytes is over %d", len, AG_TASK_BODY_MAX);
        return AG_V_TOO_LARGE;
    }
    if (!sig_b64 || !*sig_b64) {
        snprintf(why, whylen, "no X-BIC-Signature header");
        return AG_V_BAD_SIGNATURE;
    }
    if (!ag_sig_verify(key, body, len, sig_b64)) {
        snprintf(why, whylen, "signature does not verify with CCC's key");
        return AG_V_BAD_SIGNATURE;
    }
    if (parse(body, len, call, out, why, whylen) < 0) return AG_V_BAD_REQUEST;
    char what[AG_TASK_TYPE_MAX + 16];
    if (call)
        snprintf(what, sizeof(what), "call %s", out->type);
    else
        snprintf(what, sizeof(what), "task %lld", out->task_id);
    ag_verdict v = AG_V_OK;
    if (out->server_id != server_id) {
        snprintf(why, whylen, "%s is for server %lld, this is server %lld", what, out->server_id,
                 server_id);
        v = AG_V_WRONG_SERVER;
    } else if (out->issued_at < now - AG_TASK_SKEW_S || out->issued_at > now + AG_TASK_SKEW_S) {
        snprintf(why, whylen, "%s issued_at %lld is %+llds from the agent's clock", what,
                 out->issued_at, out->issued_at - now);
        v = AG_V_STALE;
    } else {
        switch (ag_nonces_add(nonces, out->nonce, now)) {
        case AG_NONCE_NEW:
            break;
        case AG_NONCE_SEEN:
            snprintf(why, whylen, "%s: nonce seen in the last %d s", what, AG_NONCE_WINDOW_S);
            v = AG_V_REPLAY;
            break;
        case AG_NONCE_FULL:
            snprintf(why, whylen, "%s: nonce cache is full", what);
            v = AG_V_BUSY;
            break;
        }
    }
    if (v != AG_V_OK) ag_task_req_clear(out);
    return v;
}

ag_verdict ag_verify_task(const unsigned char key[AG_SIG_KEY_LEN], long long server_id,
                          ag_nonces *nonces, long long now, const char *body, size_t len,
                          const char *sig_b64, ag_task_req *out, char *why, size_t whylen)
{
    return verify(key, server_id, nonces, now, body, len, sig_b64, 0, out, why, whylen);
}

ag_verdict ag_verify_call(const unsigned char key[AG_SIG_KEY_LEN], long long server_id,
                          ag_nonces *nonces, long long now, const char *body, size_t len,
                          const char *sig_b64, ag_task_req *out, char *why, size_t whylen)
{
    return verify(key, server_id, nonces, now, body, len, sig_b64, 1, out, why, whylen);
}
