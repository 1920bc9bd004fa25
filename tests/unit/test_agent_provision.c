/*
 * test_agent_provision.c - agent/ag_provision.c through ag_exec_task: the
 * storage pool, image.fetch from a fake CCC (libmicrohttpd on loopback),
 * desktops as qcow2 overlays (create, refresh, set_spec, delete, capture) on
 * libvirt's test driver (test:///default, whose state lives as long as a
 * connection to it is open: every test opens and closes its own).
 *
 * The last test runs the same tasks against qemu:///system with a real qcow2
 * base image and a QEMU (TCG) domain; it skips, saying why, when libvirtd,
 * QEMU or qemu-img is not there, and removes every domain, volume and pool it
 * made.
 */
#include "bic_test.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libvirt/virterror.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ag_config.h"
#include "ag_exec.h"
#include "ag_http.h"
#include "ag_hv.h"
#include "ag_log.h"
#include "ag_provision.h"
#include "ag_util.h"

#define URI         "test:///default"
#define BEARER      "7.cred_provision_test_0123456789"
#define IMAGE_PATH  "/api/v1/agent/image-versions/12/content"
#define IMAGE2_PATH "/api/v1/agent/image-versions/14/content"
#define UPLOAD_PATH "/api/v1/agent/image-versions/15/content"
#define UUID1       "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
#define UUID2       "7a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"

/* ---- a fake CCC: image downloads and capture uploads ---- */

struct ccc {
    struct MHD_Daemon *mhd;
    int port;
    pthread_mutex_t lock;
    unsigned char *image, *image2; /* served at IMAGE_PATH, IMAGE2_PATH */
    size_t image_len, image2_len;
    int gets;           /* GETs of any image */
    unsigned char *put; /* the last PUT body */
    size_t put_len;
    char put_sha[65]; /* its X-BIC-SHA256 header */
    char put_path[256];
};

struct req {
    unsigned char *data;
    size_t len;
};

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[32];
    unsigned n = 0;
    EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const void *body,
                              size_t len, const char *type)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result json_error(struct MHD_Connection *c, unsigned status, const char *code)
{
    char body[160];
    snprintf(body, sizeof(body), "{\"error\":{\"code\":\"%s\",\"message\":\"fake ccc says %s\"}}",
             code, code);
    return answer(c, status, body, strlen(body), "application/json");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)version;
    struct ccc *x = cls;
    struct req *r = *con_cls;
    if (!r) {
        *con_cls = calloc(1, sizeof(struct req));
        return MHD_YES;
    }
    if (*size) {
        r->data = realloc(r->data, r->len + *size);
        memcpy(r->data + r->len, data, *size);
        r->len += *size;
        *size = 0;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (!auth || strcmp(auth, "Bearer " BEARER)) return json_error(c, 401, "bad_credentials");
    pthread_mutex_lock(&x->lock);
    enum MHD_Result ret;
    if (!strcmp(method, "GET") && (!strcmp(url, IMAGE_PATH) || !strcmp(url, IMAGE2_PATH))) {
        int second = !strcmp(url, IMAGE2_PATH);
        x->gets++;
        ret = answer(c, 200, second ? x->image2 : x->image, second ? x->image2_len : x->image_len,
                     "application/octet-stream");
    } else if (!strcmp(method, "PUT")) {
        const char *sha = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-BIC-SHA256");
        free(x->put);
        x->put = r->data;
        x->put_len = r->len;
        r->data = NULL;
        snprintf(x->put_sha, sizeof(x->put_sha), "%s", sha ? sha : "");
        snprintf(x->put_path, sizeof(x->put_path), "%s", url);
        ret = answer(c, 204, "", 0, "application/json");
    } else {
        ret = json_error(c, 404, "not_found");
    }
    pthread_mutex_unlock(&x->lock);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *r = *con_cls;
    if (r) free(r->data);
    free(r);
    *con_cls = NULL;
}

static void ccc_start(struct ccc *x)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    x->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO, 0, NULL, NULL,
                              on_request, x, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    assert_non_null(x->mhd);
    x->port = MHD_get_daemon_info(x->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void ccc_stop(struct ccc *x)
{
    MHD_stop_daemon(x->mhd);
    free(x->put);
    x->put = NULL;
}

static int ccc_gets(struct ccc *x)
{
    pthread_mutex_lock(&x->lock);
    int n = x->gets;
    pthread_mutex_unlock(&x->lock);
    return n;
}

/* ---- fixture: a state directory, a configuration, an HTTP client ---- */

struct fx {
    char dir[64];
    char image_sha[65], image2_sha[65];
    ag_config cfg;
    struct ccc ccc;
    ag_http *http;
    virConnectPtr conn;
    const char *bearer; /* what the agent sends; NULL: it has no credential */
};

static int fake_bearer(void *arg, char *buf, size_t len)
{
    struct fx *f = arg;
    if (!f->bearer) return -1;
    snprintf(buf, len, "%s", f->bearer);
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static unsigned char *pattern(size_t len, unsigned seed)
{
    unsigned char *b = malloc(len);
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i] = (unsigned char)(seed >> 16);
    }
    return b;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/bic-provision-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    char err[256], v[128];
    if (ag_config_load(&f->cfg, NULL, err, sizeof(err)) < 0) return -1;
    ag_config_set(&f->cfg, "state_dir", f->dir);
    snprintf(v, sizeof(v), "%s/images", f->dir);
    ag_config_set(&f->cfg, "image_dir", v);
    pthread_mutex_init(&f->ccc.lock, NULL);
    f->ccc.image_len = 100000;
    f->ccc.image = pattern(f->ccc.image_len, 1);
    f->ccc.image2_len = 70001;
    f->ccc.image2 = pattern(f->ccc.image2_len, 2);
    sha256_hex(f->ccc.image, f->ccc.image_len, f->image_sha);
    sha256_hex(f->ccc.image2, f->ccc.image2_len, f->image2_sha);
    ccc_start(&f->ccc);
    snprintf(v, sizeof(v), "http://127.0.0.1:%d", f->ccc.port);
    f->http = ag_http_new(v, "", NULL);
    ag_hv_quiet();
    f->conn = virConnectOpen(URI);
    f->bearer = BEARER;
    if (!f->http || !f->conn) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->conn) virConnectClose(f->conn);
    ag_http_free(f->http);
    ccc_stop(&f->ccc);
    free(f->ccc.image);
    free(f->ccc.image2);
    pthread_mutex_destroy(&f->ccc.lock);
    ag_config_free(&f->cfg);
    nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Runs a task through the executor; params are stolen. */
static int run(struct fx *f, const char *type, json_t *params, json_t **result, char *err,
               size_t errlen)
{
    ag_exec_env env = {
        .conn = f->conn, .cfg = &f->cfg, .http = f->http, .bearer = fake_bearer, .arg = f};
    *err = '\0';
    int rc = ag_exec_task(&env, type, params, result, err, errlen);
    json_decref(params);
    return rc;
}

/* Runs a task that must succeed and returns its result (a new reference). */
static json_t *ok(struct fx *f, const char *type, json_t *params)
{
    json_t *res = NULL;
    char err[512];
    if (run(f, type, params, &res, err, sizeof(err)) < 0) test_fail("%s: %s", type, err);
    assert_non_null(res);
    return res;
}

/* Runs a task that must fail and checks that its error contains want. */
static void fails(struct fx *f, const char *type, json_t *params, const char *want)
{
    json_t *res = NULL;
    char err[512];
    if (run(f, type, params, &res, err, sizeof(err)) == 0) {
        char *s = json_dumps(res, 0);
        test_fail("%s succeeded (%s); expected an error with '%s'", type, s, want);
    }
    assert_null(res);
    if (!test_contains(err, want))
        test_fail("%s: error '%s' does not contain '%s'", type, err, want);
}

static json_t *fetch_params(struct fx *f, const char *path, const char *sha, long long size,
                            const char *volume)
{
    (void)f;
    return json_pack("{s:i, s:s, s:s, s:I, s:s}", "version_id", 12, "path", path, "sha256", sha,
                     "size", (json_int_t)size, "volume", volume);
}

/* Fetches the fake CCC's image 12 as bic-image-12.qcow2 and returns its path (malloc'd). */
static char *fetch_base(struct fx *f)
{
    json_t *r = ok(f, "image.fetch",
                   fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len,
                                "bic-image-12.qcow2"));
    char *path = strdup(json_string_value(json_object_get(r, "volume")));
    json_decref(r);
    return path;
}

static json_t *create_params(const char *uuid, const char *name, const char *base, const char *nic,
                             int start)
{
    char overlay[96];
    snprintf(overlay, sizeof(overlay), "bic-desk-%s.qcow2", uuid);
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:{s:s}, s:b}", "uuid", uuid, "name",
                     name, "vcpus", 2, "memory_mib", 1024, "disk_gib", 20, "base", base, "overlay",
                     overlay, "nic", "type", nic, "start", start);
}

static char *overlay_of(const char *uuid)
{
    char *s = NULL;
    if (asprintf(&s, "bic-desk-%s.qcow2", uuid) < 0) return NULL;
    return s;
}

/* The XML of volume name in pool (malloc'd), or NULL when there is no such volume. */
static char *vol_xml_pool(virConnectPtr c, const char *pool_name, const char *name)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(c, pool_name);
    if (!pool) return NULL;
    virStorageVolPtr vol = virStorageVolLookupByName(pool, name);
    char *xml = vol ? virStorageVolGetXMLDesc(vol, 0) : NULL;
    if (vol) virStorageVolFree(vol);
    virStoragePoolFree(pool);
    return xml;
}

static char *vol_xml(virConnectPtr c, const char *name)
{
    return vol_xml_pool(c, "bic", name);
}

static char *dom_xml(virConnectPtr c, const char *uuid, unsigned flags)
{
    virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
    char *xml = d ? virDomainGetXMLDesc(d, flags) : NULL;
    if (d) virDomainFree(d);
    return xml;
}

static int dom_state(virConnectPtr c, const char *uuid)
{
    virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
    if (!d) return -1;
    int st = -1, reason;
    virDomainGetState(d, &st, &reason, 0);
    virDomainFree(d);
    return st;
}

static int dir_entries(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls -A %s 2>/dev/null | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    return n;
}

/* ---- the pool and the domain type ---- */

static void domain_type_auto_is_test_on_the_test_driver(void **state)
{
    struct fx *f = *state;
    assert_string_equal(ag_provision_domain_type(f->conn, &f->cfg), "test");
    ag_config_set(&f->cfg, "domain_type", "qemu");
    assert_string_equal(ag_provision_domain_type(f->conn, &f->cfg), "qemu");
}

static void first_task_defines_builds_and_starts_the_pool(void **state)
{
    struct fx *f = *state;
    assert_null(virStoragePoolLookupByName(f->conn, "bic"));
    json_t *r = ok(f, "desktop.delete",
                   json_pack("{s:s, s:s}", "uuid", UUID1, "overlay", "bic-desk-x.qcow2"));
    assert_true(json_is_false(json_object_get(r, "changed")));
    json_decref(r);
    virStoragePoolPtr pool = virStoragePoolLookupByName(f->conn, "bic");
    assert_non_null(pool);
    assert_int_equal(virStoragePoolIsActive(pool), 1);
    int autostart = 0;
    assert_int_equal(virStoragePoolGetAutostart(pool, &autostart), 0);
    assert_int_equal(autostart, 1);
    char *xml = virStoragePoolGetXMLDesc(pool, 0);
    char want[128];
    snprintf(want, sizeof(want), "<path>%s</path>", f->cfg.image_dir);
    assert_true(test_contains(xml, "type='dir'"));
    assert_true(test_contains(xml, want));
    free(xml);
    /* an inactive pool is started again */
    assert_int_equal(virStoragePoolDestroy(pool), 0);
    r = ok(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", UUID1, "overlay", "x.qcow2"));
    json_decref(r);
    assert_int_equal(virStoragePoolIsActive(pool), 1);
    virStoragePoolFree(pool);
}

/* ---- image.fetch ---- */

static void image_fetch_downloads_verifies_and_records_the_image(void **state)
{
    struct fx *f = *state;
    json_t *r = ok(f, "image.fetch",
                   fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len,
                                "bic-image-12.qcow2"));
    char want[256];
    snprintf(want, sizeof(want), "%s/bic-image-12.qcow2", f->cfg.image_dir);
    assert_string_equal(json_string_value(json_object_get(r, "volume")), want);
    assert_string_equal(json_string_value(json_object_get(r, "sha256")), f->image_sha);
    assert_int_equal(json_integer_value(json_object_get(r, "size")), f->ccc.image_len);
    /* the test driver has no volume upload: only the download was checked */
    assert_string_equal(json_string_value(json_object_get(r, "verified")), "download");
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    assert_int_equal(ccc_gets(&f->ccc), 1);

    char *xml = vol_xml(f->conn, "bic-image-12.qcow2");
    snprintf(want, sizeof(want), "<capacity unit='bytes'>%zu</capacity>", f->ccc.image_len);
    assert_true(test_contains(xml, want));
    free(xml);
    char path[256];
    snprintf(path, sizeof(path), "%s/images/bic-image-12.qcow2.json", f->dir);
    char *rec = ag_file_read(path, 4096, NULL);
    assert_true(test_contains(rec, f->image_sha));
    free(rec);
    snprintf(path, sizeof(path), "%s/downloads", f->dir);
    assert_int_equal(dir_entries(path), 0);

    /* again: the record says the volume holds it, nothing is downloaded */
    r = ok(f, "image.fetch",
           fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len,
                        "bic-image-12.qcow2"));
    assert_true(json_is_false(json_object_get(r, "changed")));
    assert_string_equal(json_string_value(json_object_get(r, "verified")), "download");
    json_decref(r);
    assert_int_equal(ccc_gets(&f->ccc), 1);

    /* hex digits in either case name the same image */
    char upper[65];
    for (int i = 0; i < 65; i++)
        upper[i] = (char)toupper((unsigned char)f->image_sha[i]);
    r = ok(f, "image.fetch",
           fetch_params(f, IMAGE_PATH, upper, (long long)f->ccc.image_len, "bic-image-12.qcow2"));
    assert_true(json_is_false(json_object_get(r, "changed")));
    json_decref(r);
    assert_int_equal(ccc_gets(&f->ccc), 1);
}

static void image_fetch_without_a_record_fetches_again(void **state)
{
    struct fx *f = *state;
    free(fetch_base(f));
    char path[256];
    snprintf(path, sizeof(path), "%s/images/bic-image-12.qcow2.json", f->dir);
    assert_int_equal(unlink(path), 0);
    json_t *r = ok(f, "image.fetch",
                   fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len,
                                "bic-image-12.qcow2"));
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    assert_int_equal(ccc_gets(&f->ccc), 2);
    assert_int_equal(access(path, F_OK), 0);
    /* what a fetch left when the agent died goes with the next one */
    char stale[256];
    snprintf(stale, sizeof(stale), "%s/downloads/fetch-dead01", f->dir);
    assert_int_equal(ag_file_write_atomic(stale, "x", 1), 0);
    unlink(path);
    json_decref(ok(f, "image.fetch",
                   fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len,
                                "bic-image-12.qcow2")));
    assert_int_equal(access(stale, F_OK), -1);
}

static void image_fetch_with_the_wrong_sha256_leaves_nothing(void **state)
{
    struct fx *f = *state;
    char bad[65], want[300];
    memset(bad, 'a', 64);
    bad[64] = '\0';
    snprintf(want, sizeof(want), "sha256 mismatch: expected %s (%zu bytes), got %s (%zu bytes)",
             bad, f->ccc.image_len, f->image_sha, f->ccc.image_len);
    fails(f, "image.fetch",
          fetch_params(f, IMAGE_PATH, bad, (long long)f->ccc.image_len, "bic-image-12.qcow2"),
          want);
    char *xml = vol_xml(f->conn, "bic-image-12.qcow2");
    assert_null(xml);
    char path[256];
    snprintf(path, sizeof(path), "%s/downloads", f->dir);
    assert_int_equal(dir_entries(path), 0);
    snprintf(path, sizeof(path), "%s/images/bic-image-12.qcow2.json", f->dir);
    assert_int_equal(access(path, F_OK), -1);
}

static void image_fetch_of_more_bytes_than_announced_fails(void **state)
{
    struct fx *f = *state;
    fails(f, "image.fetch", fetch_params(f, IMAGE_PATH, f->image_sha, 1000, "bic-image-12.qcow2"),
          "got more than 1000 bytes");
    fails(f, "image.fetch",
          fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len + 1,
                       "bic-image-12.qcow2"),
          "sha256 mismatch");
    char *xml = vol_xml(f->conn, "bic-image-12.qcow2");
    assert_null(xml);
}

static void image_fetch_refuses_paths_outside_the_agent_api(void **state)
{
    struct fx *f = *state;
    fails(f, "image.fetch",
          fetch_params(f, "/api/v1/images/12/content", f->image_sha, 1, "v.qcow2"),
          "params.path must start with /api/v1/agent/");
    fails(f, "image.fetch", fetch_params(f, "http://evil/x", f->image_sha, 1, "v.qcow2"),
          "params.path must start with /api/v1/agent/");
    fails(f, "image.fetch",
          fetch_params(f, "/api/v1/agent/../../admin", f->image_sha, 1, "v.qcow2"),
          "params.path must be a plain URL path");
    fails(f, "image.fetch", fetch_params(f, "/api/v1/agent/x?y=1", f->image_sha, 1, "v.qcow2"),
          "params.path must be a plain URL path");
    assert_int_equal(ccc_gets(&f->ccc), 0);
}

static void image_fetch_reports_what_ccc_answered(void **state)
{
    struct fx *f = *state;
    fails(f, "image.fetch",
          fetch_params(f, "/api/v1/agent/image-versions/99/content", f->image_sha, 10, "v.qcow2"),
          "GET /api/v1/agent/image-versions/99/content: HTTP 404: not_found: fake ccc says");
    ag_exec_env env = {.conn = f->conn, .cfg = &f->cfg, .http = f->http, .arg = f};
    json_t *res = NULL;
    char err[512];
    json_t *p = fetch_params(f, IMAGE_PATH, f->image_sha, 10, "v.qcow2");
    assert_int_equal(ag_exec_task(&env, "image.fetch", p, &res, err, sizeof(err)), -1);
    json_decref(p);
    assert_string_equal(err, "image.fetch needs a connection to CCC");
}

static void image_fetch_with_a_refused_credential_fails(void **state)
{
    struct fx *f = *state;
    f->bearer = "7.not-the-credential";
    fails(f, "image.fetch",
          fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len, "v.qcow2"),
          "GET " IMAGE_PATH ": HTTP 401: bad_credentials");
    f->bearer = NULL;
    fails(f, "image.fetch",
          fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len, "v.qcow2"),
          "the agent has no credential for CCC yet");
    assert_null(vol_xml(f->conn, "v.qcow2"));
}

static void http_put_sends_the_file_with_its_headers(void **state)
{
    struct fx *f = *state;
    char path[256], err[512] = "";
    snprintf(path, sizeof(path), "%s/upload", f->dir);
    assert_int_equal(ag_file_write_atomic(path, (const char *)f->ccc.image2, f->ccc.image2_len), 0);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char sha[96];
    snprintf(sha, sizeof(sha), "X-BIC-SHA256: %s", f->image2_sha);
    const char *headers[] = {sha, NULL};
    assert_int_equal(ag_http_put_fd(f->http, UPLOAD_PATH, BEARER, fd, (long long)f->ccc.image2_len,
                                    headers, err, sizeof(err)),
                     204);
    pthread_mutex_lock(&f->ccc.lock);
    char got[65];
    sha256_hex(f->ccc.put, f->ccc.put_len, got);
    assert_int_equal(f->ccc.put_len, f->ccc.image2_len);
    assert_string_equal(got, f->image2_sha);
    assert_string_equal(f->ccc.put_sha, f->image2_sha);
    assert_string_equal(f->ccc.put_path, UPLOAD_PATH);
    pthread_mutex_unlock(&f->ccc.lock);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(ag_http_put_fd(f->http, UPLOAD_PATH, "7.wrong", fd,
                                    (long long)f->ccc.image2_len, headers, err, sizeof(err)),
                     401);
    assert_string_equal(err, "PUT " UPLOAD_PATH
                             ": HTTP 401: bad_credentials: fake ccc says bad_credentials");
    close(fd);
}

/* ---- parameters ---- */

static void bad_params_are_named(void **state)
{
    struct fx *f = *state;
    fails(f, "desktop.delete",
          json_pack("{s:s, s:s, s:i}", "uuid", UUID1, "overlay", "o.qcow2", "force", 1),
          "unknown parameter 'force'");
    fails(f, "desktop.delete", json_pack("{s:s}", "uuid", UUID1), "params.overlay is required");
    fails(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", "not-a-uuid", "overlay", "o"),
          "params.uuid must be a UUID");
    fails(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", UUID1, "overlay", "../etc/x"),
          "params.overlay must be a volume name");
    fails(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", UUID1, "overlay", ".hidden"),
          "params.overlay must be a volume name");
    fails(f, "desktop.delete", json_pack("[]"), "params must be an object");
    fails(f, "desktop.set_spec",
          json_pack("{s:s, s:i, s:i}", "uuid", UUID1, "vcpus", 0, "memory_mib", 1024),
          "params.vcpus must be an integer from 1 to 255");
    fails(f, "desktop.set_spec",
          json_pack("{s:s, s:s, s:i}", "uuid", UUID1, "vcpus", "2", "memory_mib", 1024),
          "params.vcpus must be an integer");
    json_t *p = create_params(UUID1, "a/b", "/x/base.qcow2", "virtio", 0);
    fails(f, "desktop.create", p, "params.name must be 1..200 bytes without /");
    p = create_params(UUID1, "ok", "relative/base.qcow2", "virtio", 0);
    fails(f, "desktop.create", p, "params.base must be an absolute path");
    p = create_params(UUID1, "ok", "/x/../etc/shadow", "virtio", 0);
    fails(f, "desktop.create", p, "params.base must be an absolute path");
    p = create_params(UUID1, "ok", "/x/base.qcow2", "e1000", 0);
    fails(f, "desktop.create", p, "params.nic.type must be virtio or sriov");
    p = create_params(UUID1, "ok", "/x/base.qcow2", "virtio", 0);
    json_object_set_new(json_object_get(p, "nic"), "mtu", json_integer(9000));
    fails(f, "desktop.create", p, "unknown parameter 'nic.mtu'");
    p = create_params(UUID1, "ok", "/x/base.qcow2", "sriov", 0);
    json_object_set_new(json_object_get(p, "nic"), "vf_pci", json_string("3b:10.1"));
    fails(f, "desktop.create", p, "params.nic.vf_pci must be a PCI address like 0000:3b:10.1");
    p = create_params(UUID1, "ok", "/x/base.qcow2", "virtio", 0);
    json_object_set_new(p, "start", json_string("yes"));
    fails(f, "desktop.create", p, "params.start must be true or false");
    fails(f, "image.fetch",
          json_pack("{s:i, s:s, s:s, s:i, s:s}", "version_id", 1, "path", IMAGE_PATH, "sha256",
                    "ABC", "size", 1, "volume", "v"),
          "params.sha256 must be 64 hex digits");
    /* refused before anything happened: not even the pool */
    assert_null(virStoragePoolLookupByName(f->conn, "bic"));
    json_t *res = NULL;
    char err[256];
    assert_int_equal(run(f, "desktop.explode", json_object(), &res, err, sizeof(err)), -1);
    assert_string_equal(err, AG_EXEC_UNKNOWN_TYPE);
}

static void sriov_without_a_vf_fails_before_creating_anything(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    fails(f, "desktop.create", create_params(UUID1, "desk-1", base, "sriov", 0),
          "nic.type sriov needs nic.vf_pci");
    AG_AUTOFREE char *ov = overlay_of(UUID1);
    assert_null(vol_xml(f->conn, ov));
    assert_int_equal(dom_state(f->conn, UUID1), -1);
}

/* ---- desktop.create ---- */

static void desktop_create_makes_an_overlay_on_the_base_and_a_domain(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    AG_AUTOFREE char *ov = overlay_of(UUID1);
    json_t *r = ok(f, "desktop.create", create_params(UUID1, "desk <1> & 'co'", base, "virtio", 1));
    char want[512];
    snprintf(want, sizeof(want), "%s/%s", f->cfg.image_dir, ov);
    assert_string_equal(json_string_value(json_object_get(r, "volume")), want);
    assert_string_equal(json_string_value(json_object_get(r, "uuid")), UUID1);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    assert_true(json_is_true(json_object_get(r, "changed")));
    /* the test driver assigns no websocket port */
    assert_true(json_is_null(json_object_get(r, "vnc_websocket")));
    json_decref(r);

    AG_AUTOFREE char *vx = vol_xml(f->conn, ov);
    snprintf(want, sizeof(want), "<backingStore>\n    <path>%s</path>\n    <format type='qcow2'/>",
             base);
    if (!test_contains(vx, want)) test_fail("volume XML without the backing store: %s", vx);
    assert_true(test_contains(vx, "<format type='qcow2'/>"));
    assert_true(test_contains(vx, "<capacity unit='bytes'>21474836480</capacity>"));

    AG_AUTOFREE char *dx = dom_xml(f->conn, UUID1, VIR_DOMAIN_XML_INACTIVE);
    assert_true(test_contains(dx, "<domain type='test'"));
    assert_true(test_contains(dx, "<name>desk &lt;1&gt; &amp; &apos;co&apos;</name>"));
    assert_true(test_contains(dx, "<vcpu placement='static' current='2'>8</vcpu>"));
    assert_true(test_contains(dx, "<memory unit='KiB'>1048576</memory>"));
    assert_true(test_contains(dx, "<driver name='qemu' type='qcow2'"));
    snprintf(want, sizeof(want), "<source file='%s/%s'/>", f->cfg.image_dir, ov);
    assert_true(test_contains(dx, want));
    assert_true(test_contains(dx, "<target dev='vda' bus='virtio'/>"));
    assert_true(test_contains(dx, "<interface type='user'>"));
    assert_true(test_contains(dx, "<model type='virtio'/>"));
    assert_true(test_contains(dx, "websocket='-1'"));
    assert_true(test_contains(dx, "listen='127.0.0.1'"));
    assert_true(test_contains(dx, "<graphics type='vnc'"));
    /* the console has a password from the start: 8 random [A-Za-z0-9], shown only as secure */
    assert_false(test_contains(dx, "passwd="));
    AG_AUTOFREE char *sx = dom_xml(f->conn, UUID1, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    const char *pw = sx ? strstr(sx, "passwd='") : NULL;
    if (!pw) test_fail("no VNC password in the secure XML: %s", sx);
    pw += strlen("passwd='");
    assert_int_equal(strspn(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                     8);
    assert_int_equal(pw[8], '\'');
    assert_true(test_contains(dx, "<model type='vga'"));
    assert_true(test_contains(dx, "<memballoon model='virtio'"));
    assert_int_equal(dom_state(f->conn, UUID1), VIR_DOMAIN_RUNNING);
}

static void desktop_create_again_changes_nothing_and_starts_a_stopped_one(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    json_decref(ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 0)));
    assert_int_equal(dom_state(f->conn, UUID1), VIR_DOMAIN_SHUTOFF);
    json_t *r = ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 0));
    assert_true(json_is_false(json_object_get(r, "changed")));
    assert_string_equal(json_string_value(json_object_get(r, "state")), "shutoff");
    json_decref(r);
    r = ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 1));
    assert_true(json_is_false(json_object_get(r, "changed")));
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    json_decref(r);
    /* another desktop with the same uuid but another overlay is refused */
    json_t *p = create_params(UUID1, "desk-1", base, "virtio", 0);
    json_object_set_new(p, "overlay", json_string("other.qcow2"));
    fails(f, "desktop.create", p, "already exists with another disk");
    assert_null(vol_xml(f->conn, "other.qcow2"));
}

static void desktop_create_with_sriov_or_a_network(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    /* the VF must be one discovery shows: the agent reads the ixgbe fixture tree */
    char root[4096];
    ag_config_set(&f->cfg, "root_prefix", test_fixture(root, sizeof(root), "sysroot-sriov-ixgbe"));
    json_t *p = create_params(UUID1, "desk-vf", base, "sriov", 0);
    json_t *nic = json_object_get(p, "nic");
    json_object_set_new(nic, "vf_pci", json_string("0000:03:10.2"));
    json_object_set_new(nic, "pf", json_string("enp3s0f0"));
    json_object_set_new(nic, "vf_index", json_integer(1));
    json_object_set_new(nic, "mac", json_string("52:54:00:10:20:30"));
    json_t *r = ok(f, "desktop.create", p);
    json_t *rn = json_object_get(r, "nic");
    assert_string_equal(json_string_value(json_object_get(rn, "type")), "sriov");
    assert_string_equal(json_string_value(json_object_get(rn, "vf_pci")), "0000:03:10.2");
    assert_string_equal(json_string_value(json_object_get(rn, "vf_config")), "skipped");
    json_decref(r);
    AG_AUTOFREE char *dx = dom_xml(f->conn, UUID1, VIR_DOMAIN_XML_INACTIVE);
    assert_true(test_contains(dx, "<interface type='hostdev' managed='yes'>"));
    assert_true(test_contains(dx, "<mac address='52:54:00:10:20:30'/>"));
    assert_true(test_contains(
        dx, "<address type='pci' domain='0x0000' bus='0x03' slot='0x10' function='0x2'/>"));
    assert_false(test_contains(dx, "<vlan>")); /* none asked for */

    ag_config_set(&f->cfg, "network", "desk-net");
    json_decref(ok(f, "desktop.create", create_params(UUID2, "desk-net", base, "virtio", 0)));
    AG_AUTOFREE char *dx2 = dom_xml(f->conn, UUID2, VIR_DOMAIN_XML_INACTIVE);
    assert_true(test_contains(dx2, "<interface type='network'>"));
    assert_true(test_contains(dx2, "<source network='desk-net'/>"));
}

static void desktop_create_that_fails_takes_back_its_overlay(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    AG_AUTOFREE char *ov = overlay_of(UUID1);
    /* the test driver's own domain "test" has the name: the definition fails */
    fails(f, "desktop.create", create_params(UUID1, "test", base, "virtio", 0),
          "virDomainDefineXML: ");
    assert_null(vol_xml(f->conn, ov));
    assert_int_equal(dom_state(f->conn, UUID1), -1);
}

static void desktop_create_needs_a_base_in_the_pool_and_room_for_it(void **state)
{
    struct fx *f = *state;
    fails(f, "desktop.create", create_params(UUID1, "d", "/etc/passwd", "virtio", 0),
          "base volume not found: /etc/passwd");
    /* the test driver's other pool */
    virStoragePoolPtr other = virStoragePoolLookupByName(f->conn, "default-pool");
    assert_non_null(other);
    virStorageVolPtr v =
        virStorageVolCreateXML(other,
                               "<volume><name>big.qcow2</name><capacity unit='GiB'>30</capacity>"
                               "<target><format type='qcow2'/></target></volume>",
                               0);
    assert_non_null(v);
    char *path = virStorageVolGetPath(v);
    fails(f, "desktop.create", create_params(UUID1, "d", path, "virtio", 0),
          "is not in storage pool bic");
    free(path);
    virStorageVolFree(v);
    virStoragePoolFree(other);
    /* a base bigger than disk_gib */
    virStoragePoolPtr bic = virStoragePoolLookupByName(f->conn, "bic");
    v = virStorageVolCreateXML(bic,
                               "<volume><name>big.qcow2</name><capacity unit='GiB'>30</capacity>"
                               "<target><format type='qcow2'/></target></volume>",
                               0);
    assert_non_null(v);
    path = virStorageVolGetPath(v);
    fails(f, "desktop.create", create_params(UUID1, "d", path, "virtio", 0),
          "disk_gib 20 is smaller than the base image (32212254720 bytes)");
    free(path);
    virStorageVolFree(v);
    virStoragePoolFree(bic);
    assert_int_equal(dom_state(f->conn, UUID1), -1);
}

/* ---- set_spec, refresh, delete, capture ---- */

static void set_spec_changes_the_definition_and_what_it_can_live(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    json_decref(ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 1)));
    /* within the maxima: live */
    json_t *r = ok(f, "desktop.set_spec",
                   json_pack("{s:s, s:i, s:i}", "uuid", UUID1, "vcpus", 4, "memory_mib", 512));
    assert_true(json_is_true(json_object_get(r, "live")));
    assert_true(json_is_false(json_object_get(r, "pending_restart")));
    assert_int_equal(json_integer_value(json_object_get(r, "vcpus")), 4);
    assert_int_equal(json_integer_value(json_object_get(r, "memory_mib")), 512);
    json_decref(r);
    virDomainPtr d = virDomainLookupByUUIDString(f->conn, UUID1);
    virDomainInfo info;
    assert_int_equal(virDomainGetInfo(d, &info), 0);
    assert_int_equal(info.nrVirtCpu, 4);
    assert_int_equal(info.memory, 512 * 1024);
    AG_AUTOFREE char *dx = dom_xml(f->conn, UUID1, VIR_DOMAIN_XML_INACTIVE);
    assert_true(test_contains(dx, "<vcpu placement='static' current='4'>8</vcpu>"));
    assert_true(test_contains(dx, "<memory unit='KiB'>524288</memory>"));

    /* above the maxima: the definition only, for the next boot */
    r = ok(f, "desktop.set_spec",
           json_pack("{s:s, s:i, s:i}", "uuid", UUID1, "vcpus", 12, "memory_mib", 2048));
    assert_true(json_is_false(json_object_get(r, "live")));
    assert_true(json_is_true(json_object_get(r, "pending_restart")));
    json_decref(r);
    AG_AUTOFREE char *dx2 = dom_xml(f->conn, UUID1, VIR_DOMAIN_XML_INACTIVE);
    assert_true(test_contains(dx2, "<vcpu placement='static'>12</vcpu>"));
    assert_true(test_contains(dx2, "<memory unit='KiB'>2097152</memory>"));
    assert_true(test_contains(dx2, "<currentMemory unit='KiB'>2097152</currentMemory>"));

    /* shut off: nothing is live, nothing pending */
    assert_int_equal(virDomainDestroy(d), 0);
    r = ok(f, "desktop.set_spec",
           json_pack("{s:s, s:i, s:i}", "uuid", UUID1, "vcpus", 2, "memory_mib", 1024));
    assert_true(json_is_false(json_object_get(r, "live")));
    assert_true(json_is_false(json_object_get(r, "pending_restart")));
    json_decref(r);
    virDomainFree(d);
    fails(f, "desktop.set_spec",
          json_pack("{s:s, s:i, s:i}", "uuid", UUID2, "vcpus", 2, "memory_mib", 1024),
          "domain not found: " UUID2);
}

static void refresh_puts_a_fresh_overlay_on_the_new_base(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    AG_AUTOFREE char *ov = overlay_of(UUID1);
    json_decref(ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 1)));
    json_t *r = ok(f, "image.fetch",
                   json_pack("{s:i, s:s, s:s, s:I, s:s}", "version_id", 14, "path", IMAGE2_PATH,
                             "sha256", f->image2_sha, "size", (json_int_t)f->ccc.image2_len,
                             "volume", "bic-image-14.qcow2"));
    AG_AUTOFREE char *base2 = strdup(json_string_value(json_object_get(r, "volume")));
    json_decref(r);

    r = ok(f, "desktop.refresh",
           json_pack("{s:s, s:s, s:s, s:i, s:b}", "uuid", UUID1, "base", base2, "overlay", ov,
                     "disk_gib", 30, "start", 0));
    assert_true(json_is_true(json_object_get(r, "changed")));
    assert_string_equal(json_string_value(json_object_get(r, "state")), "shutoff");
    json_decref(r);
    AG_AUTOFREE char *vx = vol_xml(f->conn, ov);
    char want[512];
    snprintf(want, sizeof(want), "<path>%s</path>", base2);
    assert_true(test_contains(vx, want));
    assert_true(test_contains(vx, "<capacity unit='bytes'>32212254720</capacity>"));

    r = ok(f, "desktop.refresh",
           json_pack("{s:s, s:s, s:s, s:i, s:b}", "uuid", UUID1, "base", base, "overlay", ov,
                     "disk_gib", 20, "start", 1));
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    json_decref(r);

    fails(f, "desktop.refresh",
          json_pack("{s:s, s:s, s:s, s:i, s:b}", "uuid", UUID2, "base", base, "overlay", ov,
                    "disk_gib", 20, "start", 1),
          "domain not found: " UUID2);
    /* an overlay the domain does not use is never touched */
    fails(f, "desktop.refresh",
          json_pack("{s:s, s:s, s:s, s:i, s:b}", "uuid", UUID1, "base", base, "overlay",
                    "bic-image-14.qcow2", "disk_gib", 20, "start", 1),
          "does not use volume bic-image-14.qcow2");
    AG_AUTOFREE char *still = vol_xml(f->conn, "bic-image-14.qcow2");
    assert_non_null(still);
    assert_int_equal(dom_state(f->conn, UUID1), VIR_DOMAIN_RUNNING);
}

static void delete_leaves_no_domain_and_no_volume(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    AG_AUTOFREE char *ov = overlay_of(UUID1);
    json_decref(ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 1)));
    json_t *r = ok(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", UUID1, "overlay", ov));
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    assert_int_equal(dom_state(f->conn, UUID1), -1);
    assert_null(vol_xml(f->conn, ov));
    r = ok(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", UUID1, "overlay", ov));
    assert_true(json_is_false(json_object_get(r, "changed")));
    json_decref(r);
    /* the base stays */
    AG_AUTOFREE char *bx = vol_xml(f->conn, "bic-image-12.qcow2");
    assert_non_null(bx);
}

static void capture_needs_a_stopped_desktop_and_volume_download(void **state)
{
    struct fx *f = *state;
    AG_AUTOFREE char *base = fetch_base(f);
    AG_AUTOFREE char *ov = overlay_of(UUID1);
    json_decref(ok(f, "desktop.create", create_params(UUID1, "desk-1", base, "virtio", 1)));
    json_t *p = json_pack("{s:s, s:s, s:i, s:s}", "uuid", UUID1, "overlay", ov, "version_id", 15,
                          "upload_path", UPLOAD_PATH);
    fails(f, "desktop.capture", json_incref(p), "the desktop must be shut off to capture it");
    virDomainPtr d = virDomainLookupByUUIDString(f->conn, UUID1);
    assert_int_equal(virDomainDestroy(d), 0);
    virDomainFree(d);
    fails(f, "desktop.capture", json_incref(p), AG_PROV_CAPTURE_NO);
    assert_null(vol_xml(f->conn, "bic-capture-15.qcow2"));
    json_object_set_new(p, "upload_path", json_string("/api/v1/images/15/content"));
    fails(f, "desktop.capture", p, "params.upload_path must start with /api/v1/agent/");
    char path[256];
    snprintf(path, sizeof(path), "%s/downloads", f->dir);
    assert_true(dir_entries(path) <= 0);
}

/* ---- qemu:///system ---- */

#define QEMU_URI         "qemu:///system"
#define QEMU_POOL_PREFIX "bic-unit-test-"

/* Names of one process's run, so that concurrent runs never meet: pool and domain uuid. */
static void qemu_names(long pid, char pool[64], char uuid[VIR_UUID_STRING_BUFLEN])
{
    snprintf(pool, 64, QEMU_POOL_PREFIX "%ld", pid);
    snprintf(uuid, VIR_UUID_STRING_BUFLEN, "6f1c2d3e-4a5b-4c6d-8e9f-%012lx", pid & 0xffffffffffffL);
}

static int sh(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The output of cmd (malloc'd). */
static char *sh_out(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0)
        fwrite(chunk, 1, n, m);
    fclose(m);
    pclose(p);
    return buf;
}

/* Removes what the run of pid made: its domain, its pool's volumes, its pool. */
static void qemu_cleanup(virConnectPtr c, long pid)
{
    char pool_name[64], uuid[VIR_UUID_STRING_BUFLEN];
    qemu_names(pid, pool_name, uuid);
    virDomainPtr d = virDomainLookupByUUIDString(c, uuid);
    if (d) {
        virDomainDestroy(d);
        virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
        virDomainFree(d);
    }
    virStoragePoolPtr pool = virStoragePoolLookupByName(c, pool_name);
    if (!pool) return;
    virStorageVolPtr *vols = NULL;
    int n = virStoragePoolListAllVolumes(pool, &vols, 0);
    for (int i = 0; i < n; i++) {
        virStorageVolDelete(vols[i], 0);
        virStorageVolFree(vols[i]);
    }
    free(vols);
    virStoragePoolDestroy(pool);
    virStoragePoolDelete(pool, 0);
    virStoragePoolUndefine(pool);
    virStoragePoolFree(pool);
}

/* Also removes what runs that died (their pid is gone) left behind. */
static void qemu_sweep(virConnectPtr c)
{
    virStoragePoolPtr *pools = NULL;
    int n = virConnectListAllStoragePools(c, &pools, 0);
    for (int i = 0; i < n; i++) {
        const char *name = virStoragePoolGetName(pools[i]);
        long pid = 0;
        if (name && !strncmp(name, QEMU_POOL_PREFIX, strlen(QEMU_POOL_PREFIX)))
            pid = strtol(name + strlen(QEMU_POOL_PREFIX), NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH) qemu_cleanup(c, pid);
        virStoragePoolFree(pools[i]);
    }
    free(pools);
}

static int qemu_setup(void **state)
{
    if (setup(state) < 0) return -1;
    struct fx *f = *state;
    virConnectClose(f->conn);
    f->conn = NULL;
    if (access("/usr/bin/qemu-img", X_OK) || access("/usr/bin/qemu-io", X_OK) ||
        access("/usr/bin/qemu-system-x86_64", X_OK))
        return 0;
    f->conn = virConnectOpen(QEMU_URI);
    if (!f->conn) return 0;
    qemu_sweep(f->conn);
    qemu_cleanup(f->conn, (long)getpid());
    char pool[64], uuid[VIR_UUID_STRING_BUFLEN];
    qemu_names((long)getpid(), pool, uuid);
    ag_config_set(&f->cfg, "storage_pool", pool);
    ag_config_set(&f->cfg, "domain_type", "qemu"); /* this machine's KVM cannot boot guests */
    chmod(f->dir, 0755);                           /* QEMU runs as another user */
    return 0;
}

static int qemu_teardown(void **state)
{
    struct fx *f = *state;
    if (f->conn) qemu_cleanup(f->conn, (long)getpid());
    return teardown(state);
}

/* A small qcow2 base image with a known pattern in its first 64 KiB, served as image 12. */
static void qemu_make_base(struct fx *f)
{
    char cmd[1024], path[256];
    snprintf(path, sizeof(path), "%s/base.qcow2", f->dir);
    snprintf(cmd, sizeof(cmd),
             "qemu-img create -q -f qcow2 %s 64M && qemu-io -f qcow2 -c 'write -P 0xab 0 64k' %s "
             ">/dev/null",
             path, path);
    assert_int_equal(sh(cmd), 0);
    size_t len = 0;
    char *img = ag_file_read(path, 64 << 20, &len);
    assert_non_null(img);
    pthread_mutex_lock(&f->ccc.lock);
    free(f->ccc.image);
    f->ccc.image = (unsigned char *)img;
    f->ccc.image_len = len;
    sha256_hex(img, len, f->image_sha);
    pthread_mutex_unlock(&f->ccc.lock);
}

static void qemu_system_linked_clone_lifecycle(void **state)
{
    struct fx *f = *state;
    if (!f->conn) {
        print_message("# qemu:///system is not reachable here (libvirtd, qemu-system-x86_64 or "
                      "qemu-img missing): the real linked-clone check did not run\n");
        skip();
    }
    qemu_make_base(f);
    char cmd[1024], pool[64], uuid[VIR_UUID_STRING_BUFLEN];
    qemu_names((long)getpid(), pool, uuid);
    json_t *r = ok(f, "image.fetch",
                   fetch_params(f, IMAGE_PATH, f->image_sha, (long long)f->ccc.image_len,
                                "bic-image-12.qcow2"));
    assert_string_equal(json_string_value(json_object_get(r, "verified")), "content");
    AG_AUTOFREE char *base = strdup(json_string_value(json_object_get(r, "volume")));
    json_decref(r);
    AG_AUTOFREE char *vx = vol_xml_pool(f->conn, pool, "bic-image-12.qcow2");
    if (!test_contains(vx, "<format type='qcow2'/>")) test_fail("base not seen as qcow2: %s", vx);

    AG_AUTOFREE char *ov = overlay_of(uuid);
    char name[80];
    snprintf(name, sizeof(name), "%s-desk", pool);
    json_t *p = create_params(uuid, name, base, "virtio", 1);
    json_object_set_new(p, "memory_mib", json_integer(128));
    json_object_set_new(p, "vcpus", json_integer(1));
    json_object_set_new(p, "disk_gib", json_integer(1));
    r = ok(f, "desktop.create", p);
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    json_int_t ws = json_integer_value(json_object_get(r, "vnc_websocket"));
    if (ws <= 0) test_fail("no websocket port in %s", json_dumps(r, 0));
    AG_AUTOFREE char *ovpath = strdup(json_string_value(json_object_get(r, "volume")));
    json_decref(r);
    snprintf(cmd, sizeof(cmd), "qemu-img info -U --backing-chain %s", ovpath);
    AG_AUTOFREE char *chain = sh_out(cmd);
    char want[512];
    snprintf(want, sizeof(want), "backing file: %s", base);
    if (!test_contains(chain, want)) test_fail("overlay not on the base: %s", chain);
    assert_true(test_contains(chain, "backing file format: qcow2"));
    print_message("# qemu:///system: %s runs on %s (websocket %lld)\n", ovpath, base,
                  (long long)ws);

    r = ok(f, "desktop.set_spec",
           json_pack("{s:s, s:i, s:i}", "uuid", uuid, "vcpus", 2, "memory_mib", 96));
    print_message("# set_spec live: %s, pending_restart: %s\n",
                  json_is_true(json_object_get(r, "live")) ? "yes" : "no",
                  json_is_true(json_object_get(r, "pending_restart")) ? "yes" : "no");
    json_decref(r);

    r = ok(f, "desktop.refresh",
           json_pack("{s:s, s:s, s:s, s:i, s:b}", "uuid", uuid, "base", base, "overlay", ov,
                     "disk_gib", 1, "start", 1));
    assert_string_equal(json_string_value(json_object_get(r, "state")), "running");
    json_decref(r);

    p = json_pack("{s:s, s:s, s:i, s:s}", "uuid", uuid, "overlay", ov, "version_id", 15,
                  "upload_path", UPLOAD_PATH);
    fails(f, "desktop.capture", json_incref(p), "the desktop must be shut off to capture it");
    json_decref(ok(f, "domain.destroy", json_pack("{s:s}", "uuid", uuid)));
    r = ok(f, "desktop.capture", p);
    const char *sha = json_string_value(json_object_get(r, "sha256"));
    pthread_mutex_lock(&f->ccc.lock);
    char got[65];
    sha256_hex(f->ccc.put, f->ccc.put_len, got);
    assert_string_equal(f->ccc.put_path, UPLOAD_PATH);
    assert_string_equal(f->ccc.put_sha, sha);
    assert_string_equal(got, sha);
    assert_int_equal(f->ccc.put_len, json_integer_value(json_object_get(r, "size")));
    char capture[256];
    snprintf(capture, sizeof(capture), "%s/captured.qcow2", f->dir);
    assert_int_equal(ag_file_write_atomic(capture, (const char *)f->ccc.put, f->ccc.put_len), 0);
    pthread_mutex_unlock(&f->ccc.lock);
    json_decref(r);
    snprintf(cmd, sizeof(cmd), "qemu-img info %s", capture);
    AG_AUTOFREE char *info = sh_out(cmd);
    assert_true(test_contains(info, "file format: qcow2"));
    if (test_contains(info, "backing file")) test_fail("the capture is not flat: %s", info);
    /* the base's bytes made it into the flat copy */
    snprintf(cmd, sizeof(cmd),
             "qemu-io -f qcow2 -r -c 'read -P 0xab 0 64k' %s | grep -q 'read 65536'", capture);
    assert_int_equal(sh(cmd), 0);
    AG_AUTOFREE char *left = vol_xml_pool(f->conn, pool, "bic-capture-15.qcow2");
    assert_null(left);

    r = ok(f, "desktop.delete", json_pack("{s:s, s:s}", "uuid", uuid, "overlay", ov));
    assert_true(json_is_true(json_object_get(r, "changed")));
    json_decref(r);
    assert_int_equal(dom_state(f->conn, uuid), -1);
    AG_AUTOFREE char *gone = vol_xml_pool(f->conn, pool, ov);
    assert_null(gone);
    assert_int_equal(access(ovpath, F_OK), -1);
}

int main(void)
{
    ag_log_set_level(AG_LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(domain_type_auto_is_test_on_the_test_driver, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(first_task_defines_builds_and_starts_the_pool, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(image_fetch_downloads_verifies_and_records_the_image, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(image_fetch_without_a_record_fetches_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(image_fetch_with_the_wrong_sha256_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(image_fetch_of_more_bytes_than_announced_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(image_fetch_refuses_paths_outside_the_agent_api, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(image_fetch_reports_what_ccc_answered, setup, teardown),
        cmocka_unit_test_setup_teardown(image_fetch_with_a_refused_credential_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(http_put_sends_the_file_with_its_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_params_are_named, setup, teardown),
        cmocka_unit_test_setup_teardown(sriov_without_a_vf_fails_before_creating_anything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(desktop_create_makes_an_overlay_on_the_base_and_a_domain,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            desktop_create_again_changes_nothing_and_starts_a_stopped_one, setup, teardown),
        cmocka_unit_test_setup_teardown(desktop_create_with_sriov_or_a_network, setup, teardown),
        cmocka_unit_test_setup_teardown(desktop_create_that_fails_takes_back_its_overlay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(desktop_create_needs_a_base_in_the_pool_and_room_for_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(set_spec_changes_the_definition_and_what_it_can_live, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refresh_puts_a_fresh_overlay_on_the_new_base, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(delete_leaves_no_domain_and_no_volume, setup, teardown),
        cmocka_unit_test_setup_teardown(capture_needs_a_stopped_desktop_and_volume_download, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(qemu_system_linked_clone_lifecycle, qemu_setup,
                                        qemu_teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
