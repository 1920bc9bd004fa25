/*
 * test_agent_daemon.c - agent/ag_daemon.c end to end on loopback: the real
 * daemon (listener, worker, libvirt's test driver) against a fake CCC served
 * here with libmicrohttpd over plain HTTP.
 *
 * The fake CCC records every request, answers enrollment with its own Ed25519
 * key, and can be told to refuse the credential (401), ask for a resync or be
 * down (503). Tasks are signed here like CCC's controller signs them.
 */
#include "bic_test.h"

#include <curl/curl.h>
#include <ftw.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ag_config.h"
#include "ag_daemon.h"
#include "ag_log.h"
#include "ag_util.h"

#define TOKEN      "bbt_0123456789abcdef0123456789abcdef0123456"
#define CREDENTIAL "cred_abcdefghijklmnopqrstuvwxyz0123456789ABC"
#define SERVER_ID  17
#define MACHINE_ID "aaaabbbbccccddddeeeeffff00001111"

/* ---- the fake CCC ---- */

struct ccc {
    pthread_mutex_t lock;
    struct MHD_Daemon *mhd;
    int port;
    EVP_PKEY *key;
    char pub_b64[64];
    json_t *log;           /* [{"path","auth","body","special"}] in arrival order */
    int refuse_heartbeats; /* answer 401 to this many heartbeats */
    int fail_heartbeats;   /* answer 503 to this many heartbeats */
    int resync_heartbeats; /* answer resync:true to this many heartbeats */
    int enrolls;
};

struct upload {
    char *data;
    size_t len;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result ccc_request(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *data,
                                   size_t *size, void **con_cls)
{
    (void)version;
    (void)method;
    struct ccc *x = cls;
    struct upload *u = *con_cls;
    if (!u) {
        *con_cls = calloc(1, sizeof(struct upload));
        return MHD_YES;
    }
    if (*size) {
        u->data = realloc(u->data, u->len + *size + 1);
        memcpy(u->data + u->len, data, *size);
        u->len += *size;
        u->data[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    json_t *body = u->data ? json_loads(u->data, 0, NULL) : NULL;
    pthread_mutex_lock(&x->lock);
    json_t *entry =
        json_pack("{s:s, s:s, s:o*}", "path", url, "auth", auth ? auth : "", "body", body);
    json_array_append_new(x->log, entry);
    char want[128];
    snprintf(want, sizeof(want), "Bearer %d.%s", SERVER_ID, CREDENTIAL);
    unsigned status = 200;
    char answer[512] = "{}";
    if (!strcmp(url, "/api/v1/agent/enroll")) {
        if (strcmp(json_string_value(json_object_get(body, "token")), TOKEN)) {
            status = 401;
            snprintf(answer, sizeof(answer), "{\"error\":{\"code\":\"bad_credentials\"}}");
        } else {
            x->enrolls++;
            snprintf(answer, sizeof(answer),
                     "{\"server_id\":%d,\"credential\":\"%s\",\"ccc_public_key\":\"%s\","
                     "\"heartbeat_interval\":10}",
                     SERVER_ID, CREDENTIAL, x->pub_b64);
        }
    } else if (!auth || strcmp(auth, want)) {
        status = 401;
    } else if (!strcmp(url, "/api/v1/agent/heartbeat")) {
        /* "special": this heartbeat was answered with 401, 503 or resync */
        if (x->refuse_heartbeats > 0) {
            x->refuse_heartbeats--;
            status = 401;
            json_object_set_new(entry, "special", json_true());
        } else if (x->fail_heartbeats > 0) {
            x->fail_heartbeats--;
            status = 503;
            json_object_set_new(entry, "special", json_true());
        } else {
            /* interval 1 keeps the test short; the config may override it */
            snprintf(answer, sizeof(answer), "{\"interval\":1,\"resync\":%s}",
                     x->resync_heartbeats > 0 ? "true" : "false");
            if (x->resync_heartbeats > 0) {
                x->resync_heartbeats--;
                json_object_set_new(entry, "special", json_true());
            }
        }
    } else {
        status = 204;
        answer[0] = '\0';
    }
    pthread_mutex_unlock(&x->lock);
    return reply(c, status, answer);
}

static void ccc_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct upload *u = *con_cls;
    if (u) free(u->data);
    free(u);
    *con_cls = NULL;
}

static void ccc_start(struct ccc *x)
{
    memset(x, 0, sizeof(*x));
    pthread_mutex_init(&x->lock, NULL);
    x->log = json_array();
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
    assert_int_equal(EVP_PKEY_keygen(kc, &x->key), 1);
    EVP_PKEY_CTX_free(kc);
    unsigned char raw[32];
    size_t n = sizeof(raw);
    EVP_PKEY_get_raw_public_key(x->key, raw, &n);
    char *b64 = ag_b64_encode(raw, n);
    snprintf(x->pub_b64, sizeof(x->pub_b64), "%s", b64);
    free(b64);
    x->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                              ccc_request, x, MHD_OPTION_NOTIFY_COMPLETED, ccc_completed, NULL,
                              MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
    assert_non_null(x->mhd);
    x->port = MHD_get_daemon_info(x->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void ccc_stop(struct ccc *x)
{
    MHD_stop_daemon(x->mhd);
    EVP_PKEY_free(x->key);
    json_decref(x->log);
    pthread_mutex_destroy(&x->lock);
}

/* Reads one of the fake's counters under its lock. */
static int ccc_get(struct ccc *x, const int *field)
{
    pthread_mutex_lock(&x->lock);
    int v = *field;
    pthread_mutex_unlock(&x->lock);
    return v;
}

/* Requests to path so far. */
static size_t ccc_count(struct ccc *x, const char *path)
{
    size_t n = 0, i;
    json_t *r;
    pthread_mutex_lock(&x->lock);
    json_array_foreach(x->log, i,
                       r) if (!strcmp(json_string_value(json_object_get(r, "path")), path)) n++;
    pthread_mutex_unlock(&x->lock);
    return n;
}

/* A copy of the body of the k-th request to path (k < 0: from the end), or NULL. */
static json_t *ccc_body(struct ccc *x, const char *path, int k)
{
    json_t *found = NULL, *r;
    size_t i;
    int seen = 0, total = (int)ccc_count(x, path);
    int want = k < 0 ? total + k : k;
    pthread_mutex_lock(&x->lock);
    json_array_foreach(x->log, i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "path")), path)) continue;
        if (seen++ == want) found = json_deep_copy(json_object_get(r, "body"));
    }
    pthread_mutex_unlock(&x->lock);
    return found;
}

/*
 * The body of the first heartbeat after the last "special" one (answered 401,
 * 503 or resync) and after every enrollment, waiting up to 15 s for it.
 */
static json_t *ccc_heartbeat_after_special(struct ccc *x)
{
    for (int t = 0; t < 1500; t++) {
        json_t *found = NULL, *r;
        size_t i, last = 0;
        int have = 0;
        pthread_mutex_lock(&x->lock);
        json_array_foreach(x->log, i, r)
        {
            const char *p = json_string_value(json_object_get(r, "path"));
            if (json_is_true(json_object_get(r, "special")) || !strcmp(p, "/api/v1/agent/enroll"))
                last = i, have = 1;
        }
        for (i = last + 1; have && i < json_array_size(x->log) && !found; i++) {
            r = json_array_get(x->log, i);
            if (!strcmp(json_string_value(json_object_get(r, "path")), "/api/v1/agent/heartbeat"))
                found = json_deep_copy(json_object_get(r, "body"));
        }
        pthread_mutex_unlock(&x->lock);
        if (found) return found;
        usleep(10000);
    }
    test_fail("no heartbeat after the last special answer within 15 s");
    return NULL;
}

/* Waits up to 15 s until path has had at least n requests. */
static void ccc_wait(struct ccc *x, const char *path, size_t n)
{
    for (int i = 0; i < 1500; i++) {
        if (ccc_count(x, path) >= n) return;
        usleep(10000);
    }
    test_fail("fake CCC: %zu requests to %s after 15 s, wanted %zu", ccc_count(x, path), path, n);
}

/* ---- the agent ---- */

struct agent {
    ag_config cfg;
    ag_daemon *d;
    pthread_t thread;
};

static void *agent_main(void *arg)
{
    ag_daemon_run(arg);
    return NULL;
}

static void set(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
}

static void agent_start(struct agent *a, struct ccc *x, const char *state_dir,
                        const char *advertise)
{
    char err[256];
    memset(a, 0, sizeof(*a));
    assert_int_equal(ag_config_load(&a->cfg, NULL, err, sizeof(err)), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", x->port);
    set(&a->cfg.ccc_url, url);
    set(&a->cfg.token, TOKEN);
    set(&a->cfg.state_dir, state_dir);
    set(&a->cfg.listen, "127.0.0.1:0");
    set(&a->cfg.libvirt_uri, "test:///default");
    set(&a->cfg.machine_id, MACHINE_ID);
    set(&a->cfg.hostname, "bs-test-01");
    set(&a->cfg.advertise_url, advertise ? advertise : "");
    a->cfg.heartbeat_interval = 1;
    if (ag_config_resolve(&a->cfg, err, sizeof(err)) < 0) test_fail("config: %s", err);
    a->d = ag_daemon_new(&a->cfg, err, sizeof(err));
    if (!a->d) test_fail("ag_daemon_new: %s", err);
    assert_int_equal(pthread_create(&a->thread, NULL, agent_main, a->d), 0);
}

static void agent_stop(struct agent *a)
{
    ag_daemon_stop(a->d);
    pthread_join(a->thread, NULL);
    ag_daemon_free(a->d);
    ag_config_free(&a->cfg);
}

/* Signs and posts a task to the agent's listener; returns the HTTP status. */
static long post_task(struct ccc *x, struct agent *a, long long id, long long server_id,
                      const char *type, const char *uuid, long long issued_at, int bad_sig)
{
    static int counter;
    char nonce[64], *body = NULL;
    snprintf(nonce, sizeof(nonce), "test-nonce-%d-%lld-abcdefghijkl", ++counter, id);
    if (uuid)
        assert_true(asprintf(&body,
                             "{\"task_id\":%lld,\"server_id\":%lld,\"type\":\"%s\","
                             "\"params\":{\"uuid\":\"%s\"},\"issued_at\":%lld,\"nonce\":\"%s\"}",
                             id, server_id, type, uuid, issued_at, nonce) > 0);
    else
        assert_true(asprintf(&body,
                             "{\"task_id\":%lld,\"server_id\":%lld,\"type\":\"%s\","
                             "\"params\":{},\"issued_at\":%lld,\"nonce\":\"%s\"}",
                             id, server_id, type, issued_at, nonce) > 0);
    unsigned char sig[64];
    size_t n = sizeof(sig);
    EVP_MD_CTX *mc = EVP_MD_CTX_new();
    EVP_DigestSignInit(mc, NULL, NULL, NULL, x->key);
    EVP_DigestSign(mc, sig, &n, (unsigned char *)body, strlen(body));
    EVP_MD_CTX_free(mc);
    if (bad_sig) sig[0] ^= 1;
    char *b64 = ag_b64_encode(sig, n);
    char hdr[160];
    snprintf(hdr, sizeof(hdr), "X-BIC-Signature: %s", b64);
    free(b64);
    CURL *c = curl_easy_init();
    char url[300];
    snprintf(url, sizeof(url), "%s/v1/tasks", ag_daemon_listen_url(a->d));
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, hdr);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
    long status = -1;
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    fclose(sink);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    free(body);
    return status;
}

/* The state of the i-th status report of task id (i < 0 from the end), or NULL. */
static json_t *status_of(struct ccc *x, long long id, int i)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/agent/tasks/%lld/status", id);
    return ccc_body(x, path, i);
}

static void wait_status(struct ccc *x, long long id, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/v1/agent/tasks/%lld/status", id);
    ccc_wait(x, path, n);
}

/* The desktop entry of domain "test" in a heartbeat body, or NULL. */
static json_t *test_desktop(json_t *hb)
{
    size_t i;
    json_t *d;
    json_array_foreach(
        json_object_get(hb, "desktops"), i,
        d) if (!strcmp(json_string_value(json_object_get(d, "name")), "test")) return d;
    return NULL;
}

static char dir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bic-agent-daemon-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void enrolls_heartbeats_runs_tasks_and_reports(void **state)
{
    (void)state;
    struct ccc x;
    struct agent a;
    ccc_start(&x);
    agent_start(&a, &x, dir, NULL);

    /* enrollment: the documented keys, the bound listener, the facts */
    ccc_wait(&x, "/api/v1/agent/enroll", 1);
    json_t *en = ccc_body(&x, "/api/v1/agent/enroll", 0);
    assert_int_equal(json_object_size(en), 6);
    assert_string_equal(json_string_value(json_object_get(en, "machine_id")), MACHINE_ID);
    assert_string_equal(json_string_value(json_object_get(en, "hostname")), "bs-test-01");
    char listen[64];
    snprintf(listen, sizeof(listen), "http://127.0.0.1:%d", ag_daemon_listen_port(a.d));
    assert_string_equal(json_string_value(json_object_get(en, "listen_url")), listen);
    json_t *facts = json_object_get(en, "facts");
    assert_true(json_is_integer(json_object_get(facts, "cpus")));
    assert_true(json_is_integer(json_object_get(facts, "storage_gib")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(facts, "hypervisor"), "type")), "TEST");
    json_decref(en);

    /* first heartbeat full with the running "test" domain, then deltas */
    ccc_wait(&x, "/api/v1/agent/heartbeat", 2);
    json_t *hb1 = ccc_body(&x, "/api/v1/agent/heartbeat", 0);
    json_t *hb2 = ccc_body(&x, "/api/v1/agent/heartbeat", 1);
    assert_true(json_is_true(json_object_get(hb1, "full")));
    assert_int_equal(json_integer_value(json_object_get(hb1, "seq")), 1);
    json_t *t = test_desktop(hb1);
    assert_non_null(t);
    assert_string_equal(json_string_value(json_object_get(t, "state")), "running");
    char uuid[64];
    snprintf(uuid, sizeof(uuid), "%s", json_string_value(json_object_get(t, "uuid")));
    json_t *host = json_object_get(hb1, "host");
    assert_int_equal(json_object_size(host), 5);
    assert_true(json_integer_value(json_object_get(host, "mem_total_mib")) > 0);
    assert_true(json_is_false(json_object_get(hb2, "full")));
    assert_int_equal(json_integer_value(json_object_get(hb2, "seq")), 2);
    assert_int_equal(json_array_size(json_object_get(hb2, "removed")), 0);
    json_decref(hb1);
    json_decref(hb2);

    /* the state file (written before the first heartbeat): private, with what enrollment gave */
    char path[128];
    snprintf(path, sizeof(path), "%s/state.json", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    json_t *saved = json_load_file(path, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(saved, "server_id")), SERVER_ID);
    assert_string_equal(json_string_value(json_object_get(saved, "credential")), CREDENTIAL);
    assert_string_equal(json_string_value(json_object_get(saved, "ccc_public_key")), x.pub_b64);
    json_decref(saved);

    /* domain.destroy: 202, running then succeeded, and a stopped event */
    long long now = (long long)time(NULL);
    assert_int_equal(post_task(&x, &a, 501, SERVER_ID, "domain.destroy", uuid, now, 0), 202);
    wait_status(&x, 501, 2);
    json_t *s0 = status_of(&x, 501, 0), *s1 = status_of(&x, 501, 1);
    assert_string_equal(json_string_value(json_object_get(s0, "state")), "running");
    assert_string_equal(json_string_value(json_object_get(s1, "state")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(json_object_get(s1, "result"), "state")),
                        "shutoff");
    json_decref(s0);
    ccc_wait(&x, "/api/v1/agent/events", 1);
    json_t *evs = ccc_body(&x, "/api/v1/agent/events", 0);
    json_t *ev = json_array_get(json_object_get(evs, "events"), 0);
    assert_string_equal(json_string_value(json_object_get(ev, "uuid")), uuid);
    assert_string_equal(json_string_value(json_object_get(ev, "event")), "stopped");
    assert_string_equal(json_string_value(json_object_get(ev, "detail")), "destroyed");
    assert_string_equal(json_string_value(json_object_get(ev, "state")), "shutoff");
    json_decref(evs);

    /* domain.start as task 502, then task 501 again: not run again, same outcome */
    assert_int_equal(post_task(&x, &a, 502, SERVER_ID, "domain.start", uuid, now, 0), 202);
    wait_status(&x, 502, 2);
    assert_int_equal(post_task(&x, &a, 501, SERVER_ID, "domain.destroy", uuid, now, 0), 202);
    wait_status(&x, 501, 3);
    json_t *again = status_of(&x, 501, 2);
    assert_true(json_equal(again, s1));
    json_decref(again);
    json_decref(s1);
    size_t hbs = ccc_count(&x, "/api/v1/agent/heartbeat");
    ccc_wait(&x, "/api/v1/agent/heartbeat", hbs + 2);
    /* still running: the destroy was not repeated. A delta carries the desktop only when it
       changed (a state change at once, counters at most once a minute): the latest heartbeat
       that has it (the first, full one has it) says running */
    json_t *hb = NULL;
    for (int k = -1; !test_desktop(hb); k--) {
        json_decref(hb);
        hb = ccc_body(&x, "/api/v1/agent/heartbeat", k);
        assert_non_null(hb);
    }
    assert_string_equal(json_string_value(json_object_get(test_desktop(hb), "state")), "running");
    json_decref(hb);

    /* refusals: bad signature 401, other server 409, stale 401; nothing reported */
    assert_int_equal(post_task(&x, &a, 503, SERVER_ID, "domain.destroy", uuid, now, 1), 401);
    assert_int_equal(post_task(&x, &a, 504, SERVER_ID + 1, "domain.destroy", uuid, now, 0), 409);
    assert_int_equal(post_task(&x, &a, 505, SERVER_ID, "domain.destroy", uuid, now - 600, 0), 401);
    /* unknown type: accepted, then failed with the documented error */
    assert_int_equal(post_task(&x, &a, 506, SERVER_ID, "domain.migrate", uuid, now, 0), 202);
    wait_status(&x, 506, 2);
    json_t *f506 = status_of(&x, 506, 1);
    assert_string_equal(json_string_value(json_object_get(f506, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(f506, "error")), "unknown task type");
    json_decref(f506);
    assert_int_equal(ccc_count(&x, "/api/v1/agent/tasks/503/status") +
                         ccc_count(&x, "/api/v1/agent/tasks/504/status") +
                         ccc_count(&x, "/api/v1/agent/tasks/505/status"),
                     0);

    /* inventory.refresh: a full heartbeat, whose seq is the result */
    assert_int_equal(post_task(&x, &a, 507, SERVER_ID, "inventory.refresh", NULL, now, 0), 202);
    wait_status(&x, 507, 2);
    json_t *r507 = status_of(&x, 507, 1);
    assert_string_equal(json_string_value(json_object_get(r507, "state")), "succeeded");
    long long seq =
        json_integer_value(json_object_get(json_object_get(r507, "result"), "heartbeat_seq"));
    json_decref(r507);
    int found = 0;
    for (int i = 0; i < (int)ccc_count(&x, "/api/v1/agent/heartbeat"); i++) {
        json_t *b = ccc_body(&x, "/api/v1/agent/heartbeat", i);
        if (json_integer_value(json_object_get(b, "seq")) == seq)
            found = json_is_true(json_object_get(b, "full"));
        json_decref(b);
    }
    if (!found) test_fail("heartbeat %lld of inventory.refresh was not a full one", seq);

    /* resync: the next heartbeat is full */
    pthread_mutex_lock(&x.lock);
    x.resync_heartbeats = 1;
    pthread_mutex_unlock(&x.lock);
    while (ccc_get(&x, &x.resync_heartbeats))
        usleep(10000);
    json_t *after_resync = ccc_heartbeat_after_special(&x);
    assert_true(json_is_true(json_object_get(after_resync, "full")));
    json_decref(after_resync);

    /* CCC down for three heartbeats: when it answers again, a full heartbeat */
    pthread_mutex_lock(&x.lock);
    x.fail_heartbeats = 3;
    pthread_mutex_unlock(&x.lock);
    while (ccc_get(&x, &x.fail_heartbeats))
        usleep(10000);
    json_t *back = ccc_heartbeat_after_special(&x);
    assert_true(json_is_true(json_object_get(back, "full")));
    assert_non_null(test_desktop(back));
    json_decref(back);

    /* credential refused: enroll again (same machine id), then a full heartbeat */
    pthread_mutex_lock(&x.lock);
    x.refuse_heartbeats = 1;
    pthread_mutex_unlock(&x.lock);
    ccc_wait(&x, "/api/v1/agent/enroll", 2);
    json_t *en2 = ccc_body(&x, "/api/v1/agent/enroll", 1);
    assert_string_equal(json_string_value(json_object_get(en2, "machine_id")), MACHINE_ID);
    json_decref(en2);
    json_t *re = ccc_heartbeat_after_special(&x);
    assert_true(json_is_true(json_object_get(re, "full")));
    json_decref(re);

    /* no request ever carried the token outside enrollment, nor the credential in a body */
    pthread_mutex_lock(&x.lock);
    char *all = json_dumps(x.log, 0);
    pthread_mutex_unlock(&x.lock);
    size_t tokens = 0;
    for (char *p = all; (p = strstr(p, TOKEN)); p++)
        tokens++;
    assert_int_equal(tokens, 2);
    free(all);

    agent_stop(&a);
    ccc_stop(&x);
}

static void restart_keeps_the_enrollment_and_starts_with_a_full_heartbeat(void **state)
{
    (void)state;
    struct ccc x;
    struct agent a;
    ccc_start(&x);
    agent_start(&a, &x, dir, NULL);
    ccc_wait(&x, "/api/v1/agent/heartbeat", 1);
    char url[300];
    snprintf(url, sizeof(url), "%s", ag_daemon_listen_url(a.d));
    agent_stop(&a);
    assert_int_equal(ccc_get(&x, &x.enrolls), 1);

    /* the same listener address: no enrollment, seq starts again with a full heartbeat */
    agent_start(&a, &x, dir, url);
    size_t hbs = ccc_count(&x, "/api/v1/agent/heartbeat");
    ccc_wait(&x, "/api/v1/agent/heartbeat", hbs + 1);
    json_t *hb = ccc_body(&x, "/api/v1/agent/heartbeat", (int)hbs);
    assert_true(json_is_true(json_object_get(hb, "full")));
    assert_int_equal(json_integer_value(json_object_get(hb, "seq")), 1);
    json_decref(hb);
    assert_int_equal(ccc_get(&x, &x.enrolls), 1);

    /* a second agent on the same state_dir is refused */
    ag_daemon *twin = ag_daemon_new(&a.cfg, (char[256]){0}, 256);
    assert_null(twin);
    agent_stop(&a);

    /* another address (port 0 again): enroll again to tell CCC */
    agent_start(&a, &x, dir, NULL);
    ccc_wait(&x, "/api/v1/agent/enroll", 2);
    agent_stop(&a);
    assert_int_equal(ccc_get(&x, &x.enrolls), 2);
    ccc_stop(&x);
}

int main(void)
{
    const char *lv = getenv("BIC_AGENT_LOG");
    ag_log_set_level(lv && ag_log_level_parse(lv) >= 0 ? ag_log_level_parse(lv) : AG_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(enrolls_heartbeats_runs_tasks_and_reports, setup, teardown),
        cmocka_unit_test_setup_teardown(
            restart_keeps_the_enrollment_and_starts_with_a_full_heartbeat, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("agent_daemon", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
