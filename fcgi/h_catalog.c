/*
 * h_catalog.c - the catalog (read: operator, change: admin): golden images, their
 * versions (qcow2 files in [catalog] image_store, registered by path, uploaded through
 * nginx or captured from a pool desktop), publishing, specs, and the two agent routes
 * that move image files (nginx streams them; bicd only decides). Every change is
 * audited in the same transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit.h"
#include "handlers.h"
#include "log.h"
#include "util.h"

static const char *const os_types[] = {"linux", "windows", "other", NULL};
static const char *const nic_types[] = {"virtio", "sriov", NULL};

const bic_field fields_image_create[] = {
    {"name", F_STR, true, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"os_type", F_STR, false, 1, 16, os_types},
    {0},
};
const bic_field fields_image_update[] = {
    {"name", F_STR, false, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"os_type", F_STR, false, 1, 16, os_types},
    {0},
};
const bic_field fields_version_register[] = {
    {"path", F_STR, true, 1, 1024},
    {"notes", F_STR, false, 0, 255},
    {0},
};
const bic_field fields_capture[] = {
    {"image_id", F_INT, true, 1, 1LL << 53},
    {"notes", F_STR, false, 0, 255},
    {0},
};
const bic_field fields_spec_create[] = {
    {"name", F_STR, true, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"vcpus", F_INT, true, 1, 64},
    {"memory_mib", F_INT, true, 256, 1048576},
    {"disk_gib", F_INT, true, 1, 4096},
    {"nic_type", F_STR, false, 1, 16, nic_types},
    {0},
};
const bic_field fields_spec_update[] = {
    {"name", F_STR, false, 1, 64},
    {"description", F_STR, false, 0, 255},
    {"vcpus", F_INT, false, 1, 64},
    {"memory_mib", F_INT, false, 256, 1048576},
    {"disk_gib", F_INT, false, 1, 4096},
    {"nic_type", F_STR, false, 1, 16, nic_types},
    {0},
};

/* ---- shapes ---- */

static json_t *int_or_null(const bic_rows *r, size_t i, size_t col)
{
    return rows_str(r, i, col) ? json_integer(rows_int(r, i, col)) : json_null();
}

static json_t *image_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o, s:o, s:I, s:o, s:o}", "id",
                     (json_int_t)rows_int(r, i, 0), "name", rows_str(r, i, 1), "description",
                     rows_str(r, i, 2), "os_type", rows_str(r, i, 3), "published_version_id",
                     int_or_null(r, i, 4), "published_version", int_or_null(r, i, 5), "versions",
                     (json_int_t)rows_int(r, i, 6), "created_at", json_time(req, rows_str(r, i, 7)),
                     "updated_at", json_time(req, rows_str(r, i, 8)));
}

static json_t *version_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack(
        "{s:I, s:I, s:I, s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:b, s:{s:I, s:I, s:I}}",
        "id", (json_int_t)rows_int(r, i, 0), "image_id", (json_int_t)rows_int(r, i, 1), "version",
        (json_int_t)rows_int(r, i, 2), "state", rows_str(r, i, 3), "source", rows_str(r, i, 4),
        "size_bytes", (json_int_t)rows_int(r, i, 5), "sha256", rows_str(r, i, 6), "notes",
        rows_str(r, i, 7), "error", rows_str(r, i, 8), "captured_from", int_or_null(r, i, 9),
        "created_by", rows_str(r, i, 10), "created_at", json_time(req, rows_str(r, i, 11)),
        "published", rows_int(r, i, 12) != 0, "replicas", "fetching",
        (json_int_t)rows_int(r, i, 13), "ready", (json_int_t)rows_int(r, i, 14), "failed",
        (json_int_t)rows_int(r, i, 15));
}

static json_t *spec_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:s, s:I, s:o, s:o}", "id",
                     (json_int_t)rows_int(r, i, 0), "name", rows_str(r, i, 1), "description",
                     rows_str(r, i, 2), "vcpus", (json_int_t)rows_int(r, i, 3), "memory_mib",
                     (json_int_t)rows_int(r, i, 4), "disk_gib", (json_int_t)rows_int(r, i, 5),
                     "nic_type", rows_str(r, i, 6), "pools", (json_int_t)rows_int(r, i, 7),
                     "created_at", json_time(req, rows_str(r, i, 8)), "updated_at",
                     json_time(req, rows_str(r, i, 9)));
}

static bic_err load_one(bic_req *req, bic_stmt st, long long id, const char *what, bic_rows *rows)
{
    bic_err e = DB_EXEC(req->db, req->arena, st, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "%s lookup failed", what);
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no %s %lld", what, id);
    return BIC_E_OK;
}

static bic_err answer_one(bic_req *req, bic_resp *resp, int status, bic_stmt st, long long id,
                          const char *what, row_json_fn fn)
{
    bic_rows rows;
    bic_err e = load_one(req, st, id, what, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, status, fn(req, &rows, 0));
    return BIC_E_OK;
}

static const char *id_str(bic_req *req, long long id)
{
    return arena_printf(req->arena, "%lld", id);
}

/* Valid UTF-8 without control characters (what the field tables accept), at most max bytes. */
static bool text_ok(const char *s, size_t max)
{
    if (strlen(s) > max) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
            return false;
    json_t *j = json_string(s); /* NULL when not UTF-8 */
    json_decref(j);
    return j != NULL;
}

/* True when the query string has a parameter called name (req_query is NULL for a bad one too). */
static bool query_names(bic_req *req, const char *name)
{
    size_t n = strlen(name);
    for (const char *q = req->query; q && *q;) {
        size_t seg = strcspn(q, "&");
        if (seg >= n && !strncmp(q, name, n) && (q[n] == '=' || seg == n)) return true;
        q += seg + (q[seg] == '&');
    }
    return false;
}

/* ---- files in the image store ---- */

/* The real path of [catalog] image_store into out (PATH_MAX bytes). */
static bic_err store_root(bic_req *req, char *out)
{
    if (!realpath(req->cfg->catalog_image_store, out))
        return fail(req, BIC_E_INTERNAL, "the image store '%s' is not usable: %s",
                    req->cfg->catalog_image_store, strerror(errno));
    return BIC_E_OK;
}

/* A path relative to the store without empty, "." or ".." components or hidden ones (.incoming). */
static bool rel_path_ok(const char *rel)
{
    if (!*rel) return false;
    for (const char *p = rel; *p;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || p[0] == '.') return false;
        p += n;
        if (*p == '/' && !*++p) return false;
    }
    return true;
}

/*
 * Hashes the regular file open on fd from its start (sha256 as 64 hex digits into hex, its
 * length into *size) after checking the qcow2 magic. what names the file in messages.
 * BIC_E_OK, BIC_E_VALIDATION (not a regular file, not qcow2) or BIC_E_INTERNAL (reported).
 */
static bic_err hash_qcow2(bic_req *req, int fd, const char *what, long long *size, char hex[65])
{
    struct stat st;
    unsigned char magic[4];
    if (fstat(fd, &st) < 0) return fail(req, BIC_E_INTERNAL, "fstat %s: %s", what, strerror(errno));
    if (!S_ISREG(st.st_mode)) return fail(req, BIC_E_VALIDATION, "%s is not a regular file", what);
    if (pread(fd, magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
        memcmp(magic, "QFI\xfb", sizeof(magic)))
        return fail(req, BIC_E_VALIDATION, "%s is not a qcow2 image", what);
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    size_t bufsz = 1 << 20;
    unsigned char *buf = malloc(bufsz);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = buf && ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    off_t off = 0;
    ssize_t n = 0;
    while (ok && (n = pread(fd, buf, bufsz, off)) > 0) {
        ok = EVP_DigestUpdate(ctx, buf, (size_t)n) == 1;
        off += n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int saved = errno;
    ok = ok && n == 0 && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(ctx);
    free(buf);
    if (!ok)
        return fail(req, BIC_E_INTERNAL, "cannot hash %s: %s", what,
                    n < 0 ? strerror(saved) : "digest failed");
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    *size = (long long)off;
    return BIC_E_OK;
}

/* A file bicd is about to own: the uploaded body, hashed, then linked into the store. */
struct incoming {
    int fd;
    const char *path; /* real path under <store>/.incoming */
    long long size;
    char sha256[65];
};

static void close_fd(void *p)
{
    close(*(int *)p);
}

/*
 * Opens the body nginx stored (req->upload_file), which must lie directly in
 * <store>/.incoming, checks it is qcow2 and hashes it. BIC_E_OK, BIC_E_BAD_REQUEST (no
 * file: not sent through nginx's upload location), BIC_E_VALIDATION or BIC_E_INTERNAL.
 */
static bic_err open_upload(bic_req *req, const char *store, struct incoming *in)
{
    char real[PATH_MAX];
    if (!req->upload_file)
        return fail(req, BIC_E_BAD_REQUEST,
                    "no file arrived: send the image as the body of this PUT through nginx");
    if (!realpath(req->upload_file, real))
        return fail(req, BIC_E_INTERNAL, "the uploaded file %s: %s", req->upload_file,
                    strerror(errno));
    const char *dir = arena_printf(req->arena, "%s/.incoming/", store);
    if (strncmp(real, dir, strlen(dir)) || strchr(real + strlen(dir), '/'))
        return fail(req, BIC_E_INTERNAL, "the uploaded file %s is not in %s", real, dir);
    in->path = arena_strdup(req->arena, real);
    in->fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in->fd < 0) return fail(req, BIC_E_INTERNAL, "open %s: %s", real, strerror(errno));
    arena_defer(req->arena, close_fd,
                memcpy(arena_alloc(req->arena, sizeof(int)), &in->fd, sizeof(int)));
    return hash_qcow2(req, in->fd, "the body", &in->size, in->sha256);
}

static char *random_hex(bic_req *req, size_t nbytes)
{
    unsigned char raw[16];
    char *out = arena_alloc(req->arena, 2 * nbytes + 1);
    if (nbytes > sizeof(raw)) nbytes = sizeof(raw);
    if (getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
        for (size_t i = 0; i < nbytes; i++)
            raw[i] = (unsigned char)rand();
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return out;
}

/*
 * Hard-links the uploaded file into the store as img-<image>-v<version>-<random>.qcow2 and
 * checks the new name is the inode that was hashed. Returns the name (arena) in *name.
 */
static bic_err link_into_store(bic_req *req, const char *store, const struct incoming *in,
                               long long image_id, long long version, const char **name)
{
    const char *n =
        arena_printf(req->arena, "img-%lld-v%lld-%s.qcow2", image_id, version, random_hex(req, 6));
    const char *to = arena_printf(req->arena, "%s/%s", store, n);
    struct stat a, b;
    if (link(in->path, to) < 0)
        return fail(req, BIC_E_INTERNAL, "link %s to %s: %s", in->path, to, strerror(errno));
    if (fstat(in->fd, &a) < 0 || lstat(to, &b) < 0 || a.st_ino != b.st_ino ||
        a.st_dev != b.st_dev) {
        unlink(to);
        return fail(req, BIC_E_INTERNAL, "%s is not the file that was hashed", to);
    }
    *name = n;
    return BIC_E_OK;
}

/* Removes a file bicd made in the store (after its row is gone); logs a failure. */
static void remove_store_file(bic_req *req, const char *store, const char *name)
{
    if (!name || !*name || !rel_path_ok(name)) return;
    const char *path = arena_printf(req->arena, "%s/%s", store, name);
    if (unlink(path) < 0 && errno != ENOENT)
        LOG_WARN(req->request_id, "cannot remove %s from the image store: %s", path,
                 strerror(errno));
}

/* A list by id with an optional name prefix (q): the shape of the image and spec lists. */
static bic_err name_list(bic_req *req, bic_resp *resp, bic_stmt stmt, row_json_fn fn,
                         const char *what)
{
    long long limit, after;
    bic_err e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    const char *q = req_query(req, "q");
    const char *like = like_prefix(req, q && *q ? q : NULL);
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, stmt, &rows, P_INT(after), P_STR(like), P_STR(like),
                P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "%s list failed", what);
    resp_page(req, resp, &rows, fn, limit, "next_after");
    return BIC_E_OK;
}

/* ---- images ---- */

bic_err h_images_list(bic_req *req, bic_resp *resp)
{
    return name_list(req, resp, STMT_image_list, image_json, "image");
}

bic_err h_images_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_err e = param_id(req, 0, &id);
    return e != BIC_E_OK ? e : answer_one(req, resp, 200, STMT_image_get, id, "image", image_json);
}

struct cat_ctx {
    bic_req *req;
    long long id, image_id, version, version_id;
    const char *store;
    struct incoming *in;
    const char *file; /* relative to the store */
    const char *linked;
    bic_rows cur;
    const char **files; /* to remove after commit */
    size_t nfiles;
};

static bic_err image_lock(bic_req *req, bic_db *db, long long id, bic_rows *rows)
{
    bic_err e = DB_EXEC(db, req->arena, STMT_image_lock, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "image lookup failed");
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no image %lld", id);
    return BIC_E_OK;
}

static bic_err image_create_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    const char *name = json_get_str(req->json, "name", "");
    const char *desc = json_get_str(req->json, "description", "");
    const char *os = json_get_str(req->json, "os_type", "linux");
    bic_err e =
        DB_EXEC(db, req->arena, STMT_image_insert, NULL, P_STR(name), P_STR(desc), P_STR(os));
    if (e == BIC_E_CONFLICT) return fail(req, e, "an image named '%s' already exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot create the image");
    c->id = (long long)db_insert_id(db);
    return audit_write(
        req, "image.create", "image", id_str(req, c->id), true,
        json_pack("{s:s, s:s, s:s}", "name", name, "description", desc, "os_type", os));
}

bic_err h_images_create(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    bic_err e = db_tx(req->db, image_create_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/images/%lld", c.id);
    return answer_one(req, resp, 201, STMT_image_get, c.id, "image", image_json);
}

static bic_err image_update_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = image_lock(req, db, c->id, &cur);
    if (e != BIC_E_OK) return e;
    const char *name = json_get_str(req->json, "name", rows_str(&cur, 0, 1));
    const char *desc = json_get_str(req->json, "description", rows_str(&cur, 0, 2));
    const char *os = json_get_str(req->json, "os_type", rows_str(&cur, 0, 3));
    e = DB_EXEC(db, req->arena, STMT_image_update, NULL, P_STR(name), P_STR(desc), P_STR(os),
                P_INT(c->id));
    if (e == BIC_E_CONFLICT) return fail(req, e, "an image named '%s' already exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot update the image");
    return audit_write(req, "image.update", "image", id_str(req, c->id), true,
                       json_pack("{s:s, s:s, s:s, s:s}", "name_before", rows_str(&cur, 0, 1),
                                 "name", name, "description", desc, "os_type", os));
}

bic_err h_images_update(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, image_update_tx, &c);
    if (e != BIC_E_OK) return e;
    return answer_one(req, resp, 200, STMT_image_get, c.id, "image", image_json);
}

static bic_err image_delete_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur, user, files;
    c->nfiles = 0;
    bic_err e = image_lock(req, db, c->id, &cur);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_image_pool_user, &user, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "pool lookup failed");
    if (user.nrows) return fail(req, BIC_E_CONFLICT, "used by pool %s", rows_str(&user, 0, 0));
    e = DB_EXEC(db, req->arena, STMT_image_desktop_user, &user, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
    if (user.nrows) return fail(req, BIC_E_CONFLICT, "used by desktop %s", rows_str(&user, 0, 0));
    e = DB_EXEC(db, req->arena, STMT_image_owned_files, &files, P_INT(c->id));
    if (e == BIC_E_OK) e = DB_EXEC(db, req->arena, STMT_image_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete the image");
    c->files = arena_alloc(req->arena, (files.nrows + 1) * sizeof(*c->files));
    for (size_t i = 0; i < files.nrows; i++)
        c->files[c->nfiles++] = rows_str(&files, i, 0);
    return audit_write(
        req, "image.delete", "image", id_str(req, c->id), true,
        json_pack("{s:s, s:I}", "name", rows_str(&cur, 0, 1), "files", (json_int_t)c->nfiles));
}

bic_err h_images_delete(bic_req *req, bic_resp *resp)
{
    char store[PATH_MAX];
    struct cat_ctx c = {.req = req};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = store_root(req, store);
    if (e == BIC_E_OK) e = db_tx(req->db, image_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    for (size_t i = 0; i < c.nfiles; i++)
        remove_store_file(req, store, c.files[i]);
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- versions ---- */

bic_err h_versions_list(bic_req *req, bic_resp *resp)
{
    long long id, limit, before;
    bic_rows img, rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = query_page(req, 100, 1000, "before", 1LL << 62, &limit, &before);
    if (e == BIC_E_OK) e = load_one(req, STMT_image_get, id, "image", &img);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_version_list, &rows, P_INT(id), P_INT(before),
                P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "version list failed");
    resp_page(req, resp, &rows, version_json, limit, "next_before");
    return BIC_E_OK;
}

bic_err h_versions_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows v, r;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_one(req, STMT_version_get, id, "image version", &v);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_version_replicas, &r, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "replica list failed");
    json_t *out = version_json(req, &v, 0), *detail = json_array();
    for (size_t i = 0; i < r.nrows; i++)
        json_array_append_new(detail,
                              json_pack("{s:I, s:s, s:s, s:s, s:s, s:o}", "server_id",
                                        (json_int_t)rows_int(&r, i, 0), "hostname",
                                        rows_str(&r, i, 1), "state", rows_str(&r, i, 2), "verified",
                                        rows_str(&r, i, 3), "error", rows_str(&r, i, 4),
                                        "updated_at", json_time(req, rows_str(&r, i, 5))));
    json_object_set_new(out, "replicas_detail", detail);
    resp_json(req, resp, 200, out);
    return BIC_E_OK;
}

/*
 * Inserts version N+1 of c->image_id (the image row locked, so numbers never repeat) in the
 * given state and source with c->file and the hash of c->in. Sets c->version, c->version_id.
 */
static bic_err version_insert(struct cat_ctx *c, bic_db *db, const char *state, const char *source,
                              const char *notes, bic_param captured_from)
{
    bic_req *req = c->req;
    bic_rows img, next;
    bic_err e = image_lock(req, db, c->image_id, &img);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_version_next, &next, P_INT(c->image_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot number the version");
    c->version = rows_int(&next, 0, 0);
    if (c->in && c->store) {
        if (c->linked) remove_store_file(req, c->store, c->linked); /* a re-run transaction */
        c->linked = NULL;
        e = link_into_store(req, c->store, c->in, c->image_id, c->version, &c->linked);
        if (e != BIC_E_OK) return e;
        c->file = c->linked;
    }
    e = DB_EXEC(db, req->arena, STMT_version_insert, NULL, P_INT(c->image_id), P_INT(c->version),
                P_STR(state), P_STR(source), P_STR(c->file ? c->file : ""),
                P_INT(c->in ? c->in->size : 0), P_STR(c->in ? c->in->sha256 : ""), P_STR(notes),
                captured_from, P_STR(req->who.username ? req->who.username : ""));
    if (e != BIC_E_OK) return fail(req, e, "cannot create the version");
    c->version_id = (long long)db_insert_id(db);
    return BIC_E_OK;
}

struct new_version {
    struct cat_ctx c;
    const char *source, *notes;
};

static bic_err version_create_tx(bic_db *db, void *arg)
{
    struct new_version *n = arg;
    struct cat_ctx *c = &n->c;
    bic_err e = version_insert(c, db, "ready", n->source, n->notes, P_NULL);
    if (e != BIC_E_OK) return e;
    return audit_write(
        c->req, "image_version.create", "image_version", id_str(c->req, c->version_id), true,
        json_pack("{s:I, s:I, s:s, s:s, s:s, s:I}", "image_id", (json_int_t)c->image_id, "version",
                  (json_int_t)c->version, "source", n->source, "file", c->file, "sha256",
                  c->in->sha256, "size_bytes", (json_int_t)c->in->size));
}

/* Runs version_create_tx and answers 201 Version; removes a linked file if nothing committed. */
static bic_err version_create(bic_req *req, bic_resp *resp, struct new_version *n)
{
    bic_err e = db_tx(req->db, version_create_tx, n);
    if (e != BIC_E_OK) {
        if (n->c.linked && e != BIC_E_DB_UNAVAILABLE)
            remove_store_file(req, n->c.store, n->c.linked);
        else if (n->c.linked)
            LOG_WARN(req->request_id, "left %s in the image store: the commit's outcome is unknown",
                     n->c.linked);
        return e;
    }
    resp_header(req, resp, "Location: /api/v1/image-versions/%lld", n->c.version_id);
    return answer_one(req, resp, 201, STMT_version_get, n->c.version_id, "image version",
                      version_json);
}

bic_err h_versions_register(bic_req *req, bic_resp *resp)
{
    char store[PATH_MAX], real[PATH_MAX];
    struct incoming in = {.fd = -1};
    struct new_version n = {.c = {.req = req, .in = &in}, .source = "path"};
    bic_rows img;
    n.notes = json_get_str(req->json, "notes", "");
    bic_err e = param_id(req, 0, &n.c.image_id);
    if (e == BIC_E_OK) e = load_one(req, STMT_image_get, n.c.image_id, "image", &img);
    if (e == BIC_E_OK) e = store_root(req, store);
    if (e != BIC_E_OK) return e;

    const char *path = json_get_str(req->json, "path", "");
    const char *rel = path;
    if (path[0] == '/') {
        const char *conf = req->cfg->catalog_image_store;
        size_t nc = strlen(conf), ns = strlen(store);
        while (nc > 1 && conf[nc - 1] == '/')
            nc--;
        if (!strncmp(path, store, ns) && path[ns] == '/')
            rel = path + ns + 1;
        else if (!strncmp(path, conf, nc) && path[nc] == '/')
            rel = path + nc + 1;
        else
            return fail(req, BIC_E_VALIDATION, "path: '%s' is outside the image store %s", path,
                        store);
    }
    if (!rel_path_ok(rel))
        return fail(req, BIC_E_VALIDATION,
                    "path: '%s' may not contain empty, '.', '..' or hidden (dot) components", path);
    const char *full = arena_printf(req->arena, "%s/%s", store, rel);
    if (!realpath(full, real))
        return fail(req, BIC_E_VALIDATION, "path: '%s' is not in the image store: %s", path,
                    strerror(errno));
    size_t ns = strlen(store);
    if (strncmp(real, store, ns) || real[ns] != '/' || !rel_path_ok(real + ns + 1))
        return fail(req, BIC_E_VALIDATION, "path: '%s' leads outside the image store", path);
    n.c.file = arena_strdup(req->arena, real + ns + 1);
    if (strlen(n.c.file) > 255)
        return fail(req, BIC_E_VALIDATION, "path: '%s' is longer than 255 bytes", n.c.file);
    in.fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (in.fd < 0)
        return fail(req, BIC_E_VALIDATION, "path: cannot open '%s': %s", path, strerror(errno));
    arena_defer(req->arena, close_fd,
                memcpy(arena_alloc(req->arena, sizeof(int)), &in.fd, sizeof(int)));
    e = hash_qcow2(req, in.fd, arena_printf(req->arena, "path: '%s'", path), &in.size, in.sha256);
    if (e != BIC_E_OK) return e;
    return version_create(req, resp, &n);
}

bic_err h_versions_upload(bic_req *req, bic_resp *resp)
{
    char store[PATH_MAX];
    struct incoming in = {.fd = -1};
    struct new_version n = {.c = {.req = req, .in = &in, .store = store}, .source = "upload"};
    bic_rows img;
    bic_err e = param_id(req, 0, &n.c.image_id);
    if (e != BIC_E_OK) return e;
    n.notes = req_query(req, "notes");
    if (!n.notes && query_names(req, "notes"))
        return fail(req, BIC_E_VALIDATION, "notes: malformed percent-encoding");
    if (!n.notes) n.notes = "";
    if (!text_ok(n.notes, 255))
        return fail(req, BIC_E_VALIDATION,
                    "notes: must be text of at most 255 bytes without control characters");
    e = load_one(req, STMT_image_get, n.c.image_id, "image", &img);
    if (e == BIC_E_OK) e = store_root(req, store);
    if (e != BIC_E_OK || req->upload_check) return e;
    e = open_upload(req, store, &in);
    if (e != BIC_E_OK) return e;
    return version_create(req, resp, &n);
}

static bic_err publish_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = DB_EXEC(db, req->arena, STMT_version_lock, &c->cur, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "version lookup failed");
    if (c->cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no image version %lld", c->id);
    const char *state = rows_str(&c->cur, 0, 3);
    c->image_id = rows_int(&c->cur, 0, 1);
    if (strcmp(state, "ready"))
        return fail(req, BIC_E_CONFLICT,
                    "only a ready version can be published; version %lld is %s",
                    rows_int(&c->cur, 0, 2), state);
    e = DB_EXEC(db, req->arena, STMT_image_publish, NULL, P_INT(c->id), P_INT(c->image_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot publish the version");
    return audit_write(req, "image.publish", "image", id_str(req, c->image_id), true,
                       json_pack("{s:I, s:I, s:o}", "version_id", (json_int_t)c->id, "version",
                                 (json_int_t)rows_int(&c->cur, 0, 2), "previous_version_id",
                                 int_or_null(&c->cur, 0, 7)));
}

bic_err h_versions_publish(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, publish_tx, &c);
    if (e != BIC_E_OK) return e;
    return answer_one(req, resp, 200, STMT_image_get, c.image_id, "image", image_json);
}

static bic_err version_delete_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows user;
    bic_err e = DB_EXEC(db, req->arena, STMT_version_lock, &c->cur, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "version lookup failed");
    if (c->cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no image version %lld", c->id);
    long long number = rows_int(&c->cur, 0, 2);
    if (rows_str(&c->cur, 0, 7) && rows_int(&c->cur, 0, 7) == c->id)
        return fail(req, BIC_E_CONFLICT, "version %lld is the published version of its image",
                    number);
    e = DB_EXEC(db, req->arena, STMT_version_desktop_user, &user, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
    if (user.nrows) return fail(req, BIC_E_CONFLICT, "used by desktop %s", rows_str(&user, 0, 0));
    e = DB_EXEC(db, req->arena, STMT_version_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete the version");
    return audit_write(req, "image_version.delete", "image_version", id_str(req, c->id), true,
                       json_pack("{s:I, s:I, s:s, s:s}", "image_id",
                                 (json_int_t)rows_int(&c->cur, 0, 1), "version", (json_int_t)number,
                                 "source", rows_str(&c->cur, 0, 4), "file",
                                 rows_str(&c->cur, 0, 5)));
}

bic_err h_versions_delete(bic_req *req, bic_resp *resp)
{
    char store[PATH_MAX];
    struct cat_ctx c = {.req = req};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = store_root(req, store);
    if (e == BIC_E_OK) e = db_tx(req->db, version_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    /* a registered path stays: bicd did not make it */
    if (strcmp(rows_str(&c.cur, 0, 4), "path"))
        remove_store_file(req, store, rows_str(&c.cur, 0, 5));
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- capture ---- */

static bic_err capture_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows d, busy;
    bic_err e = DB_EXEC(db, req->arena, STMT_cat_desktop_lock, &d, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "desktop lookup failed");
    if (d.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no desktop %lld", c->id);
    const char *name = rows_str(&d, 0, 6), *state = rows_str(&d, 0, 2);
    const char *phase = rows_str(&d, 0, 7), *overlay = rows_str(&d, 0, 4);
    if (!rows_str(&d, 0, 1))
        return fail(req, BIC_E_CONFLICT,
                    "desktop %s is not a pool desktop; only those are captured", name);
    if (strcmp(state, "shutoff"))
        return fail(req, BIC_E_CONFLICT, "desktop %s is %s; shut it down before capturing it", name,
                    state);
    if (phase && strcmp(phase, "ready") && strcmp(phase, "error"))
        return fail(req, BIC_E_CONFLICT, "desktop %s is %s; wait until that ends", name, phase);
    if (!overlay || !*overlay)
        return fail(req, BIC_E_CONFLICT, "desktop %s has no volume to capture", name);
    e = DB_EXEC(db, req->arena, STMT_version_capturing_from, &busy, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "capture lookup failed");
    if (busy.nrows)
        return fail(req, BIC_E_CONFLICT, "desktop %s is already being captured (version id %s)",
                    name, rows_str(&busy, 0, 0));

    e = version_insert(c, db, "capturing", "capture", json_get_str(req->json, "notes", ""),
                       P_INT(c->id));
    if (e == BIC_E_NOT_FOUND)
        return fail(req, BIC_E_VALIDATION, "image_id: no image %lld", c->image_id);
    if (e != BIC_E_OK) return e;
    const char *upload =
        arena_printf(req->arena, "/api/v1/agent/image-versions/%lld/content", c->version_id);
    json_t *params =
        json_pack("{s:s, s:s, s:I, s:s}", "uuid", rows_str(&d, 0, 3), "overlay", overlay,
                  "version_id", (json_int_t)c->version_id, "upload_path", upload);
    char *pj = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(params);
    arena_defer(req->arena, free, pj);
    e = DB_EXEC(db, req->arena, STMT_task_insert, NULL, P_INT(rows_int(&d, 0, 5)),
                P_STR("desktop.capture"), P_STR(pj), P_INT(req->cfg->agents_task_max_attempts),
                P_STR(req->who.username ? req->who.username : ""));
    if (e != BIC_E_OK) return fail(req, e, "cannot queue the capture task");
    long long task = (long long)db_insert_id(db);
    e = DB_EXEC(db, req->arena, STMT_version_set_task, NULL, P_INT(task), P_INT(c->version_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot record the capture task");
    return audit_write(req, "image_version.capture", "image_version", id_str(req, c->version_id),
                       true,
                       json_pack("{s:I, s:I, s:I, s:s, s:I}", "image_id", (json_int_t)c->image_id,
                                 "version", (json_int_t)c->version, "desktop_id", (json_int_t)c->id,
                                 "desktop", name, "task", (json_int_t)task));
}

bic_err h_desktops_capture(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    c.image_id = json_get_int(req->json, "image_id", 0);
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, capture_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/image-versions/%lld", c.version_id);
    return answer_one(req, resp, 202, STMT_version_get, c.version_id, "image version",
                      version_json);
}

/* ---- specs ---- */

bic_err h_specs_list(bic_req *req, bic_resp *resp)
{
    return name_list(req, resp, STMT_spec_list, spec_json, "spec");
}

bic_err h_specs_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_err e = param_id(req, 0, &id);
    return e != BIC_E_OK ? e : answer_one(req, resp, 200, STMT_spec_get, id, "spec", spec_json);
}

static bic_err spec_write_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur = {0};
    bic_err e = BIC_E_OK;
    bool create = c->id == 0;
    if (!create) {
        e = DB_EXEC(db, req->arena, STMT_spec_lock, &cur, P_INT(c->id));
        if (e != BIC_E_OK) return fail(req, e, "spec lookup failed");
        if (cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no spec %lld", c->id);
    }
    const json_t *j = req->json;
    const char *name = json_get_str(j, "name", create ? "" : rows_str(&cur, 0, 1));
    const char *desc = json_get_str(j, "description", create ? "" : rows_str(&cur, 0, 2));
    long long vcpus = json_get_int(j, "vcpus", create ? 0 : rows_int(&cur, 0, 3));
    long long mem = json_get_int(j, "memory_mib", create ? 0 : rows_int(&cur, 0, 4));
    long long disk = json_get_int(j, "disk_gib", create ? 0 : rows_int(&cur, 0, 5));
    const char *nic = json_get_str(j, "nic_type", create ? "virtio" : rows_str(&cur, 0, 6));
    if (create)
        e = DB_EXEC(db, req->arena, STMT_spec_insert, NULL, P_STR(name), P_STR(desc), P_INT(vcpus),
                    P_INT(mem), P_INT(disk), P_STR(nic));
    else
        e = DB_EXEC(db, req->arena, STMT_spec_update, NULL, P_STR(name), P_STR(desc), P_INT(vcpus),
                    P_INT(mem), P_INT(disk), P_STR(nic), P_INT(c->id));
    if (e == BIC_E_CONFLICT) return fail(req, e, "a spec named '%s' already exists", name);
    if (e != BIC_E_OK) return fail(req, e, "cannot store the spec");
    if (create) c->version_id = (long long)db_insert_id(db);
    long long id = create ? c->version_id : c->id;
    json_t *sum = json_pack("{s:s, s:s, s:I, s:I, s:I, s:s}", "name", name, "description", desc,
                            "vcpus", (json_int_t)vcpus, "memory_mib", (json_int_t)mem, "disk_gib",
                            (json_int_t)disk, "nic_type", nic);
    if (!create) json_object_set_new(sum, "name_before", json_string(rows_str(&cur, 0, 1)));
    return audit_write(req, create ? "spec.create" : "spec.update", "spec", id_str(req, id), true,
                       sum);
}

bic_err h_specs_create(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    bic_err e = db_tx(req->db, spec_write_tx, &c);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/specs/%lld", c.version_id);
    return answer_one(req, resp, 201, STMT_spec_get, c.version_id, "spec", spec_json);
}

bic_err h_specs_update(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, spec_write_tx, &c);
    if (e != BIC_E_OK) return e;
    return answer_one(req, resp, 200, STMT_spec_get, c.id, "spec", spec_json);
}

static bic_err spec_delete_tx(bic_db *db, void *arg)
{
    struct cat_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur, user;
    bic_err e = DB_EXEC(db, req->arena, STMT_spec_lock, &cur, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "spec lookup failed");
    if (cur.nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no spec %lld", c->id);
    e = DB_EXEC(db, req->arena, STMT_spec_pool_user, &user, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "pool lookup failed");
    if (user.nrows) return fail(req, BIC_E_CONFLICT, "used by pool %s", rows_str(&user, 0, 0));
    e = DB_EXEC(db, req->arena, STMT_spec_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete the spec");
    return audit_write(req, "spec.delete", "spec", id_str(req, c->id), true,
                       json_pack("{s:s}", "name", rows_str(&cur, 0, 1)));
}

bic_err h_specs_delete(bic_req *req, bic_resp *resp)
{
    struct cat_ctx c = {.req = req};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, spec_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- agents: image files ---- */

/* Percent-encodes everything but unreserved characters and '/' (nginx decodes X-Accel-Redirect). */
static const char *uri_escape(bic_req *req, const char *s)
{
    char *out = arena_alloc(req->arena, 3 * strlen(s) + 1), *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~/", *p))
            *o++ = (char)*p;
        else
            o += sprintf(o, "%%%02X", *p);
    }
    *o = '\0';
    return out;
}

bic_err h_agent_image_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows r;
    bic_err e = param_id(req, 0, &id);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(req->db, req->arena, STMT_replica_for_agent, &r, P_INT(id),
                P_INT(req->who.server_id));
    if (e != BIC_E_OK) return fail(req, e, "replica lookup failed");
    if (r.nrows != 1)
        return fail(req, BIC_E_NOT_FOUND, "no replica of image version %lld for this server", id);
    const char *file = rows_str(&r, 0, 0);
    if (strcmp(rows_str(&r, 0, 1), "ready") || !rel_path_ok(file))
        return fail(req, BIC_E_CONFLICT, "image version %lld is %s", id, rows_str(&r, 0, 1));
    /* nginx streams the file from its internal location; bicd never reads it */
    resp_header(req, resp, "X-Accel-Redirect: %s%s", CATALOG_ACCEL_PREFIX, uri_escape(req, file));
    resp->status = 200;
    return BIC_E_OK;
}

static bool is_sha256_hex(const char *s)
{
    if (!s || strlen(s) != 64) return false;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
              (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

static const char *agent_name(bic_req *req)
{
    bic_rows h;
    if (DB_EXEC(req->db, req->arena, STMT_cat_server_hostname, &h, P_INT(req->who.server_id)) ==
            BIC_E_OK &&
        h.nrows == 1)
        return arena_printf(req->arena, "agent:%s", rows_str(&h, 0, 0));
    return arena_printf(req->arena, "agent:%lld", req->who.server_id);
}

struct capture_put {
    struct cat_ctx c;
    const char *why; /* the upload is refused and the version fails */
    bool again;      /* the same file was stored already */
};

/* Checks the version is capturing for this server (rows from version_lock). */
static bic_err capture_owner(bic_req *req, long long id, const bic_rows *v, size_t state_col,
                             size_t server_col)
{
    if (v->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no image version %lld", id);
    if (!rows_str(v, 0, server_col) || rows_int(v, 0, server_col) != req->who.server_id)
        return fail(req, BIC_E_FORBIDDEN, "image version %lld is not captured by this server", id);
    if (strcmp(rows_str(v, 0, state_col), "capturing"))
        return fail(req, BIC_E_CONFLICT, "image version %lld is %s, not capturing", id,
                    rows_str(v, 0, state_col));
    return BIC_E_OK;
}

static bic_err capture_put_tx(bic_db *db, void *arg)
{
    struct capture_put *p = arg;
    struct cat_ctx *c = &p->c;
    bic_req *req = c->req;
    bic_rows v;
    p->again = false;
    bic_err e = DB_EXEC(db, req->arena, STMT_version_lock, &v, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "version lookup failed");
    e = capture_owner(req, c->id, &v, 3, 8);
    if (e != BIC_E_OK) return e;
    const char *name = agent_name(req);
    if (p->why) {
        e = DB_EXEC(db, req->arena, STMT_version_fail_capture, NULL, P_STR(p->why), P_INT(c->id));
        if (e != BIC_E_OK) return fail(req, e, "cannot fail the version");
        return audit_write_as(req, 0, name, "image_version.upload", "image_version",
                              id_str(req, c->id), false, json_pack("{s:s}", "error", p->why));
    }
    const char *have = rows_str(&v, 0, 9);
    if (*have) {
        if (strcmp(have, c->in->sha256))
            return fail(req, BIC_E_CONFLICT, "image version %lld already has a different file",
                        c->id);
        p->again = true; /* a repeated upload of the same bytes: nothing to change */
        return BIC_E_OK;
    }
    if (c->linked) remove_store_file(req, c->store, c->linked);
    c->linked = NULL;
    e = link_into_store(req, c->store, c->in, rows_int(&v, 0, 1), rows_int(&v, 0, 2), &c->linked);
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_version_set_file, NULL, P_STR(c->linked),
                    P_INT(c->in->size), P_STR(c->in->sha256), P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot record the captured file");
    return audit_write_as(req, 0, name, "image_version.upload", "image_version", id_str(req, c->id),
                          true,
                          json_pack("{s:s, s:s, s:I}", "file", c->linked, "sha256", c->in->sha256,
                                    "size_bytes", (json_int_t)c->in->size));
}

bic_err h_agent_image_put(bic_req *req, bic_resp *resp)
{
    char store[PATH_MAX];
    struct incoming in = {.fd = -1};
    struct capture_put p = {.c = {.req = req, .in = &in, .store = store}};
    bic_rows v;
    bic_err e = param_id(req, 0, &p.c.id);
    if (e == BIC_E_OK)
        e = DB_EXEC(req->db, req->arena, STMT_version_capture_info, &v, P_INT(p.c.id));
    if (e != BIC_E_OK) return e == BIC_E_NOT_FOUND ? e : fail(req, e, "version lookup failed");
    e = capture_owner(req, p.c.id, &v, 0, 1);
    if (e != BIC_E_OK) return e;
    if (!is_sha256_hex(req->content_sha256))
        return fail(req, BIC_E_VALIDATION,
                    "X-BIC-SHA256: the header must carry the body's sha256 as 64 hex digits");
    e = store_root(req, store);
    if (e != BIC_E_OK || req->upload_check) return e;

    e = open_upload(req, store, &in);
    if (e == BIC_E_VALIDATION) {
        p.why = arena_printf(req->arena, "the captured file was refused: %s", req->err_msg);
    } else if (e != BIC_E_OK) {
        return e;
    } else if (strcasecmp(in.sha256, req->content_sha256)) {
        p.why =
            arena_printf(req->arena, "the captured file's sha256 is %s, but the agent sent %.64s",
                         in.sha256, req->content_sha256);
    }
    char why[256] = "";
    if (p.why) snprintf(why, sizeof(why), "%s", p.why);
    e = db_tx(req->db, capture_put_tx, &p);
    if (e != BIC_E_OK) {
        if (p.c.linked && e != BIC_E_DB_UNAVAILABLE) remove_store_file(req, store, p.c.linked);
        return e;
    }
    if (p.why) return fail(req, BIC_E_VALIDATION, "%s", why);
    return answer_one(req, resp, 200, STMT_version_get, p.c.id, "image version", version_json);
}
