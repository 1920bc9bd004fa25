#include "ag_state.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "ag_util.h"

static int credential_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 16 || n > AG_CREDENTIAL_MAX) return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || *s == '.') return 0;
    return 1;
}

/* Checks and copies the three values every state has; -1 with err. */
static int set_identity(ag_state *st, const json_t *id, const json_t *cred, const json_t *key,
                        char *err, size_t errlen)
{
    if (!json_is_integer(id) || json_integer_value(id) < 1) {
        snprintf(err, errlen, "server_id is not a positive integer");
        return -1;
    }
    if (!json_is_string(cred) || !credential_ok(json_string_value(cred))) {
        snprintf(err, errlen, "credential is not 16..%d printable characters without '.'",
                 AG_CREDENTIAL_MAX);
        return -1;
    }
    const char *k = json_string_value(key);
    if (!k || strlen(k) >= sizeof(st->ccc_public_key) || ag_sig_key_decode(k, st->key) < 0) {
        snprintf(err, errlen, "ccc_public_key is not base64 of a 32-byte Ed25519 key");
        return -1;
    }
    st->server_id = json_integer_value(id);
    snprintf(st->credential, sizeof(st->credential), "%s", json_string_value(cred));
    snprintf(st->ccc_public_key, sizeof(st->ccc_public_key), "%s", k);
    return 0;
}

int ag_state_from_enroll(const json_t *answer, ag_state *st, char *err, size_t errlen)
{
    if (!json_is_object(answer)) {
        snprintf(err, errlen, "enrollment answer is not a JSON object");
        return -1;
    }
    if (set_identity(st, json_object_get(answer, "server_id"),
                     json_object_get(answer, "credential"),
                     json_object_get(answer, "ccc_public_key"), err, errlen) < 0)
        return -1;
    json_t *iv = json_object_get(answer, "heartbeat_interval");
    st->heartbeat_interval = 0;
    if (iv) {
        if (!json_is_integer(iv) || json_integer_value(iv) < 1 || json_integer_value(iv) > 3600) {
            snprintf(err, errlen, "heartbeat_interval is not 1..3600");
            return -1;
        }
        st->heartbeat_interval = json_integer_value(iv);
    }
    return 0;
}

int ag_state_load(const char *dir, ag_state *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/state.json", dir);
    size_t len;
    char *data = ag_file_read(path, 64 * 1024, &len);
    if (!data) {
        if (errno == ENOENT) return 1;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    explicit_bzero(data, len);
    free(data);
    int rc = -1;
    char why[200];
    if (!json_is_object(o)) {
        snprintf(err, errlen, "%s is not a JSON object", path);
    } else if (set_identity(st, json_object_get(o, "server_id"), json_object_get(o, "credential"),
                            json_object_get(o, "ccc_public_key"), why, sizeof(why)) < 0) {
        snprintf(err, errlen, "%s: %s", path, why);
    } else {
        const char *m = json_string_value(json_object_get(o, "machine_id"));
        const char *u = json_string_value(json_object_get(o, "listen_url"));
        snprintf(st->machine_id, sizeof(st->machine_id), "%s", m ? m : "");
        snprintf(st->listen_url, sizeof(st->listen_url), "%s", u ? u : "");
        rc = 0;
    }
    ag_json_wipe_string(json_object_get(o, "credential"));
    json_decref(o);
    if (rc < 0) ag_state_wipe(st);
    return rc;
}

int ag_state_save(const char *dir, const ag_state *st, char *err, size_t errlen)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/state.json", dir);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s}", "server_id", (json_int_t)st->server_id,
                          "credential", st->credential, "ccc_public_key", st->ccc_public_key,
                          "machine_id", st->machine_id, "listen_url", st->listen_url);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = ag_json_write_atomic(path, o);
    int saved = errno;
    ag_json_wipe_string(json_object_get(o, "credential"));
    json_decref(o);
    if (rc < 0) snprintf(err, errlen, "cannot write %s: %s", path, strerror(saved));
    return rc;
}

void ag_state_wipe(ag_state *st)
{
    explicit_bzero(st, sizeof(*st));
}
