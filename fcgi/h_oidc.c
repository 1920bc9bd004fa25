/*
 * h_oidc.c - OpenID Connect: sign-in through a provider (authorization code flow with PKCE S256,
 * state bound to the browser, nonce; the ID token verified here with oidc.c), the users and group
 * memberships that sign-in makes, the provider list of the sign-in page, and the admin API for
 * providers, their group mappings and "test connection". Design, checks and API: docs/oidc.md.
 *
 * The browser steps (start, callback) always answer with a redirect: to the provider, or back to
 * the portal with ?oidc_error=<code> that the sign-in page translates, or ?oidc=mfa when a second
 * factor is due. Every refused callback writes a failed auth.oidc.login audit row with the reason.
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "group_maps.h"
#include "handlers.h"
#include "log.h"
#include "oidc.h"
#include "seal.h"
#include "session.h"
#include "util.h"

#define COOKIE_OIDC        "__Host-bic_oidc"     /* binds a sign-in in flight to its browser */
#define COOKIE_OIDC_MFA    "__Host-bic_oidc_mfa" /* the second-step token after a provider */
#define OIDC_OPEN_PER_ADDR 30  /* sign-ins one client address may have in flight */
#define OIDC_MAX_AGE       600 /* seconds an ID token may be old when it arrives */
#define OIDC_CALLBACK_PATH "/api/v1/auth/oidc/callback"

static const char *const token_auth_choices[] = {"client_secret_basic", "client_secret_post",
                                                 "none", NULL};

const bic_field fields_oidc_provider[] = {
    /* name, type, required, min, max, choices, nullable */
    {"name", F_STR, true, 1, 64},
    {"display_name", F_STR, false, 0, 128},
    {"issuer", F_STR, true, 9, 512},
    {"client_id", F_STR, true, 1, 255},
    {"client_secret", F_STR, false, 1, OIDC_SECRET_MAX, NULL, true},
    {"token_auth", F_STR, false, 1, 32, token_auth_choices},
    {"scopes", F_STR, false, 6, 255},
    {"username_claim", F_STR, false, 1, 64},
    {"display_name_claim", F_STR, false, 0, 64},
    {"email_claim", F_STR, false, 0, 64},
    {"groups_claim", F_STR, false, 0, 64},
    {"redirect_uri", F_STR, false, 0, 512},
    {"ca_certs", F_ARRAY, false, 0, 32, NULL, true},
    {"enabled", F_BOOL, false},
    {0},
};

const bic_field fields_oidc_provider_update[] = {
    {"name", F_STR, false, 1, 64},
    {"display_name", F_STR, false, 0, 128},
    {"issuer", F_STR, false, 9, 512},
    {"client_id", F_STR, false, 1, 255},
    {"client_secret", F_STR, false, 1, OIDC_SECRET_MAX, NULL, true},
    {"token_auth", F_STR, false, 1, 32, token_auth_choices},
    {"scopes", F_STR, false, 6, 255},
    {"username_claim", F_STR, false, 1, 64},
    {"display_name_claim", F_STR, false, 0, 64},
    {"email_claim", F_STR, false, 0, 64},
    {"groups_claim", F_STR, false, 0, 64},
    {"redirect_uri", F_STR, false, 0, 512},
    {"ca_certs", F_ARRAY, false, 0, 32, NULL, true},
    {"enabled", F_BOOL, false},
    {0},
};

const bic_field fields_oidc_group_map[] = {
    {"claim_value", F_STR, true, 1, 255},
    {"group_id", F_INT, true, 1, 1LL << 53},
    {0},
};

static const char *secret_aad(bic_req *req, long long provider_id)
{
    return arena_printf(req->arena, "oidc_provider:%lld", provider_id);
}

/* ---- shared helpers ---- */

/* The callback address: the provider's configured one, else the first [server] public_origin,
 * else https:// and the host the browser used (":443" dropped). NULL when none is known. */
static const char *callback_uri(bic_req *req, const char *configured)
{
    if (configured && *configured) return configured;
    const char *list = req->cfg->server_public_origin;
    if (list && *list) {
        while (*list == ' ' || *list == ',')
            list++;
        size_t n = strcspn(list, ", ");
        if (n) return arena_printf(req->arena, "%.*s%s", (int)n, list, OIDC_CALLBACK_PATH);
    }
    if (!req->host || !*req->host) return NULL;
    size_t hn = strlen(req->host);
    if (hn > 4 && !strcmp(req->host + hn - 4, ":443")) hn -= 4;
    return arena_printf(req->arena, "https://%.*s%s", (int)hn, req->host, OIDC_CALLBACK_PATH);
}

/* Printable ASCII of s (at most max bytes), for text a provider sent us. */
static const char *printable(bic_req *req, const char *s, size_t max)
{
    if (!s) return "";
    char *out = arena_alloc(req->arena, max + 1);
    size_t o = 0;
    for (; *s && o < max; s++)
        out[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    out[o] = '\0';
    return out;
}

static bool chars_in(const char *s, const char *extra)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s)) return false;
    return true;
}

/* An https:// address with a host, no spaces, no query and no fragment. */
static bool https_url_ok(const char *s)
{
    if (strncmp(s, "https://", 8) || !s[8] || s[8] == '/' || s[8] == ':') return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#' || *p == '\\' ||
            *p == '"' || *p == '<' || *p == '>')
            return false;
    return true;
}

/* Whether s is exactly one PEM certificate (printable text around it, no key). */
static bool one_pem_certificate(const char *s)
{
    for (const char *p = s; *p; p++)
        if ((*p < 0x20 && *p != '\n' && *p != '\r' && *p != '\t') || *p > 0x7e) return false;
    const char *begin = strstr(s, "-----BEGIN ");
    if (!begin || strstr(begin + 1, "-----BEGIN ") || strstr(s, "PRIVATE KEY")) return false;
    BIO *b = BIO_new_mem_buf(s, (int)strlen(s));
    if (!b) return false;
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    bool ok = x != NULL;
    X509_free(x);
    ERR_clear_error();
    BIO_free(b);
    return ok;
}

/*
 * The body's ca_certs (an array of PEM certificates: JSON strings may hold the line breaks PEM
 * needs only inside an array, which the field table leaves to the handler) as one bundle.
 * *given is false when the body has no ca_certs; *pem is NULL for null or [].
 */
static bic_err ca_from_body(bic_req *req, bool *given, const char **pem)
{
    const json_t *v = json_object_get(req->json, "ca_certs"), *item;
    size_t i;
    *given = v != NULL;
    *pem = NULL;
    if (!v || json_is_null(v) || json_array_size(v) == 0) return BIC_E_OK;
    const char *out = "";
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (!s || json_string_length(item) > 16384 || strlen(s) != json_string_length(item) ||
            !one_pem_certificate(s))
            return fail(req, BIC_E_VALIDATION,
                        "ca_certs[%zu] must be one PEM certificate (-----BEGIN CERTIFICATE-----) "
                        "and nothing else",
                        i);
        size_t n = strlen(s);
        out = arena_printf(req->arena, "%s%s%s", out, s, n && s[n - 1] == '\n' ? "" : "\n");
    }
    *pem = out;
    return BIC_E_OK;
}

/* A stored bundle as the API shows it: one PEM string per certificate; null for none. */
static json_t *ca_json(bic_req *req, const char *pem)
{
    static const char END[] = "-----END CERTIFICATE-----";
    if (!pem || !*pem) return json_null();
    json_t *arr = json_array();
    const char *p = pem, *b, *e;
    while ((b = strstr(p, "-----BEGIN CERTIFICATE-----")) && (e = strstr(b, END))) {
        e += sizeof(END) - 1;
        json_array_append_new(arr,
                              json_string(arena_printf(req->arena, "%.*s\n", (int)(e - b), b)));
        p = e;
    }
    return arr;
}

/* ---- providers: the admin API ---- */

static json_t *provider_json(bic_req *req, const bic_rows *r, size_t i)
{
    const char *ca = rows_str(r, i, 13);
    json_t *o = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id",
        (json_int_t)rows_int(r, i, 0), "name", rows_str(r, i, 1), "display_name", rows_str(r, i, 2),
        "issuer", rows_str(r, i, 3), "client_id", rows_str(r, i, 4), "client_secret_set",
        rows_int(r, i, 5) != 0, "token_auth", rows_str(r, i, 6), "scopes", rows_str(r, i, 7),
        "username_claim", rows_str(r, i, 8), "display_name_claim", rows_str(r, i, 9), "email_claim",
        rows_str(r, i, 10), "groups_claim", rows_str(r, i, 11), "redirect_uri", rows_str(r, i, 12));
    const char *cb = callback_uri(req, rows_str(r, i, 12));
    json_object_set_new(o, "callback_uri", cb ? json_string(cb) : json_null());
    json_object_set_new(o, "ca_certs", ca_json(req, ca));
    json_object_set_new(o, "enabled", json_boolean(rows_int(r, i, 14) != 0));
    json_object_set_new(o, "created_at", json_time(req, rows_str(r, i, 15)));
    json_object_set_new(o, "updated_at", json_time(req, rows_str(r, i, 16)));
    json_object_set_new(o, "group_maps", json_integer(rows_int(r, i, 17)));
    json_object_set_new(o, "users", json_integer(rows_int(r, i, 18)));
    return o;
}

static bic_err load_provider(bic_req *req, bic_db *db, bic_stmt stmt, long long id, bic_rows *rows)
{
    bic_err e = DB_EXEC(db, req->arena, stmt, rows, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "OIDC provider lookup failed");
    if (rows->nrows != 1) return fail(req, BIC_E_NOT_FOUND, "no OIDC provider %lld", id);
    return BIC_E_OK;
}

/* A provider's settings after a create or change, as they will be stored. */
struct pconf {
    const char *name, *display_name, *issuer, *client_id, *token_auth, *scopes;
    const char *username_claim, *display_name_claim, *email_claim, *groups_claim;
    const char *redirect_uri, *ca_pem; /* ca_pem NULL: the system's CAs */
    bool enabled, has_secret;
};

static bool scopes_ok(const char *s)
{
    bool openid = false;
    while (*s) {
        size_t n = 0;
        for (; s[n] && s[n] != ' '; n++)
            if (s[n] < 0x21 || s[n] > 0x7e || s[n] == '"' || s[n] == '\\') return false;
        if (n == 0) return false; /* leading, trailing or double space */
        if (n == 6 && !strncmp(s, "openid", 6)) openid = true;
        s += n;
        if (*s == ' ' && !*++s) return false;
    }
    return openid;
}

static bic_err pconf_check(bic_req *req, const struct pconf *p)
{
    if (!chars_in(p->name, "._-"))
        return fail(req, BIC_E_VALIDATION, "name may hold letters, digits and . _ - only");
    if (!https_url_ok(p->issuer))
        return fail(req, BIC_E_VALIDATION,
                    "issuer must be an https:// address without a query or fragment, e.g. "
                    "https://login.example.com/realms/staff");
    if (!scopes_ok(p->scopes))
        return fail(req, BIC_E_VALIDATION,
                    "scopes must be scope names separated by single spaces and include openid");
    if (!*p->username_claim || !chars_in(p->username_claim, "_.:/-"))
        return fail(req, BIC_E_VALIDATION,
                    "username_claim must be a claim name (letters, digits and _ . : / -)");
    const char *claims[] = {p->display_name_claim, p->email_claim, p->groups_claim};
    for (size_t i = 0; i < 3; i++)
        if (!chars_in(claims[i], "_.:/-"))
            return fail(req, BIC_E_VALIDATION,
                        "claim names may hold letters, digits and _ . : / - only ('' = unused)");
    if (*p->redirect_uri) {
        size_t n = strlen(p->redirect_uri), k = strlen(OIDC_CALLBACK_PATH);
        if (!https_url_ok(p->redirect_uri) || n <= k + 8 ||
            strcmp(p->redirect_uri + n - k, OIDC_CALLBACK_PATH))
            return fail(req, BIC_E_VALIDATION,
                        "redirect_uri must be https://<this site>" OIDC_CALLBACK_PATH
                        " (or empty to derive it)");
    }
    if (strcmp(p->token_auth, "none") && !p->has_secret)
        return fail(req, BIC_E_VALIDATION,
                    "client_secret is needed with token_auth '%s' (or use token_auth none for a "
                    "public client)",
                    p->token_auth);
    return BIC_E_OK;
}

/* body over cur (a row of OIDC_PROVIDER_COLS, or NULL for a new provider); p->ca_pem already
 * holds the body's bundle when ca_given. */
static void pconf_merge(const json_t *body, const bic_rows *cur, bool ca_given, struct pconf *p)
{
#define PICK(key, col, def) json_get_str(body, key, cur ? rows_str(cur, 0, col) : def)
    p->name = PICK("name", 1, "");
    p->display_name = PICK("display_name", 2, "");
    p->issuer = PICK("issuer", 3, "");
    p->client_id = PICK("client_id", 4, "");
    p->token_auth = PICK("token_auth", 6, "client_secret_basic");
    p->scopes = PICK("scopes", 7, "openid profile email");
    p->username_claim = PICK("username_claim", 8, "preferred_username");
    p->display_name_claim = PICK("display_name_claim", 9, "name");
    p->email_claim = PICK("email_claim", 10, "email");
    p->groups_claim = PICK("groups_claim", 11, "groups");
    p->redirect_uri = PICK("redirect_uri", 12, "");
#undef PICK
    if (!ca_given) p->ca_pem = cur ? rows_str(cur, 0, 13) : NULL;
    if (p->ca_pem && !*p->ca_pem) p->ca_pem = NULL;
    p->enabled = json_get_bool(body, "enabled", cur ? rows_int(cur, 0, 14) != 0 : true);
    const json_t *sec = json_object_get(body, "client_secret");
    p->has_secret = sec ? json_is_string(sec) : (cur && rows_int(cur, 0, 5) != 0);
}

struct provider_ctx {
    bic_req *req;
    long long id;
    struct pconf p;
    bool ca_given; /* p.ca_pem came from the body */
};

/* In the caller's transaction: stores the body's client_secret (sealed) or clears it (null). */
static bic_err store_secret(bic_req *req, bic_db *db, long long id)
{
    const json_t *sec = json_object_get(req->json, "client_secret");
    if (!sec) return BIC_E_OK;
    if (!json_is_string(sec))
        return DB_EXEC(db, req->arena, STMT_oidc_provider_set_secret, NULL, P_NULL, P_INT(id));
    unsigned char *sealed;
    size_t n;
    bic_err e = seal_value(req, SEAL_OIDC, secret_aad(req, id), json_string_value(sec),
                           json_string_length(sec), &sealed, &n);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_oidc_provider_set_secret, NULL, P_BLOB(sealed, n), P_INT(id));
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the client secret");
}

static bic_err provider_create_tx(bic_db *db, void *arg)
{
    struct provider_ctx *c = arg;
    bic_req *req = c->req;
    const struct pconf *p = &c->p;
    bic_err e = DB_EXEC(db, req->arena, STMT_oidc_provider_insert, NULL, P_STR(p->name),
                        P_STR(p->display_name), P_STR(p->issuer), P_STR(p->client_id),
                        P_STR(p->token_auth), P_STR(p->scopes), P_STR(p->username_claim),
                        P_STR(p->display_name_claim), P_STR(p->email_claim), P_STR(p->groups_claim),
                        P_STR(p->redirect_uri), P_STR(p->ca_pem), P_INT(p->enabled));
    if (e == BIC_E_CONFLICT)
        return fail(req, e, "an OIDC provider named '%s' already exists", p->name);
    if (e != BIC_E_OK) return fail(req, e, "cannot create the OIDC provider");
    c->id = (long long)db_insert_id(db);
    e = store_secret(req, db, c->id);
    if (e != BIC_E_OK) return e;
    return audit_write(
        req, "oidc.provider.create", "oidc_provider", arena_printf(req->arena, "%lld", c->id), true,
        json_pack("{s:s, s:s, s:s, s:b, s:b}", "name", p->name, "issuer", p->issuer, "client_id",
                  p->client_id, "enabled", p->enabled, "client_secret_set", p->has_secret));
}

bic_err h_oidc_providers_create(bic_req *req, bic_resp *resp)
{
    struct provider_ctx c = {req, 0, {0}, false};
    bic_err e = ca_from_body(req, &c.ca_given, &c.p.ca_pem);
    if (e != BIC_E_OK) return e;
    pconf_merge(req->json, NULL, c.ca_given, &c.p);
    e = pconf_check(req, &c.p);
    if (e == BIC_E_OK) e = db_tx(req->db, provider_create_tx, &c);
    bic_rows rows;
    if (e == BIC_E_OK) e = load_provider(req, req->db, STMT_oidc_provider_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_header(req, resp, "Location: /api/v1/oidc-providers/%lld", c.id);
    resp_json(req, resp, 201, provider_json(req, &rows, 0));
    return BIC_E_OK;
}

bic_err h_oidc_providers_list(bic_req *req, bic_resp *resp)
{
    long long limit, after;
    bic_err e = query_page(req, 50, 500, "after", 0, &limit, &after);
    if (e != BIC_E_OK) return e;
    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_oidc_provider_list, &rows, P_INT(after), P_INT(limit));
    if (e != BIC_E_OK) return fail(req, e, "OIDC provider list failed");
    resp_page(req, resp, &rows, provider_json, limit, "next_after");
    return BIC_E_OK;
}

bic_err h_oidc_providers_get(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_provider(req, req->db, STMT_oidc_provider_get, id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, provider_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err provider_update_tx(bic_db *db, void *arg)
{
    struct provider_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_provider(req, db, STMT_oidc_provider_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    struct pconf *p = &c->p;
    pconf_merge(req->json, &cur, c->ca_given, p);
    e = pconf_check(req, p);
    if (e != BIC_E_OK) return e;
    e = DB_EXEC(db, req->arena, STMT_oidc_provider_update, NULL, P_STR(p->name),
                P_STR(p->display_name), P_STR(p->issuer), P_STR(p->client_id), P_STR(p->token_auth),
                P_STR(p->scopes), P_STR(p->username_claim), P_STR(p->display_name_claim),
                P_STR(p->email_claim), P_STR(p->groups_claim), P_STR(p->redirect_uri),
                P_STR(p->ca_pem), P_INT(p->enabled), P_INT(c->id));
    if (e == BIC_E_CONFLICT)
        return fail(req, e, "an OIDC provider named '%s' already exists", p->name);
    if (e != BIC_E_OK) return fail(req, e, "cannot change the OIDC provider");
    e = store_secret(req, db, c->id);
    if (e != BIC_E_OK) return e;
    /* the names of what changed; never a secret's value */
    json_t *changed = json_array();
    const char *key;
    json_t *v;
    json_object_foreach(req->json, key, v) json_array_append_new(changed, json_string(key));
    return audit_write(req, "oidc.provider.update", "oidc_provider", req->param[0], true,
                       json_pack("{s:s, s:o}", "name", p->name, "changed", changed));
}

bic_err h_oidc_providers_update(bic_req *req, bic_resp *resp)
{
    struct provider_ctx c = {req, 0, {0}, false};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = ca_from_body(req, &c.ca_given, &c.p.ca_pem);
    if (e == BIC_E_OK) e = db_tx(req->db, provider_update_tx, &c);
    bic_rows rows;
    if (e == BIC_E_OK) e = load_provider(req, req->db, STMT_oidc_provider_get, c.id, &rows);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200, provider_json(req, &rows, 0));
    return BIC_E_OK;
}

static bic_err provider_delete_tx(bic_db *db, void *arg)
{
    struct provider_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows cur;
    bic_err e = load_provider(req, db, STMT_oidc_provider_get_for_update, c->id, &cur);
    if (e != BIC_E_OK) return e;
    long long users = rows_int(&cur, 0, 18);
    if (users > 0)
        return fail(req, BIC_E_CONFLICT,
                    "%lld users sign in through '%s'; disable the provider instead", users,
                    rows_str(&cur, 0, 1));
    e = DB_EXEC(db, req->arena, STMT_oidc_provider_delete, NULL, P_INT(c->id));
    if (e != BIC_E_OK) return fail(req, e, "cannot delete the OIDC provider");
    return audit_write(
        req, "oidc.provider.delete", "oidc_provider", req->param[0], true,
        json_pack("{s:s, s:s}", "name", rows_str(&cur, 0, 1), "issuer", rows_str(&cur, 0, 3)));
}

bic_err h_oidc_providers_delete(bic_req *req, bic_resp *resp)
{
    struct provider_ctx c = {req, 0, {0}, false};
    bic_err e = param_id(req, 0, &c.id);
    if (e == BIC_E_OK) e = db_tx(req->db, provider_delete_tx, &c);
    if (e != BIC_E_OK) return e;
    resp->status = 204;
    return BIC_E_OK;
}

/* ---- test connection ---- */

static void step(json_t *steps, const char *name, bool ok, const char *message)
{
    json_array_append_new(steps,
                          json_pack("{s:s, s:b, s:s}", "step", name, "ok", ok, "message", message));
}

static json_t *probe(bic_req *req, const char *issuer, const char *ca_pem, const char *callback,
                     bool *ok)
{
    json_t *steps = json_array(), *out = json_object();
    char why[768];
    const char *message = NULL;
    long timeout = req->cfg->oidc_http_timeout_ms;
    *ok = false;
    const char *slash = issuer[0] && issuer[strlen(issuer) - 1] == '/' ? "" : "/";
    const char *url =
        arena_printf(req->arena, "%s%s.well-known/openid-configuration", issuer, slash);
    oidc_http_req r = {url, ca_pem, timeout, 256 * 1024, NULL, NULL, NULL};
    json_t *doc, *jwks;
    if (oidc_http_json(req->arena, &r, "the discovery document", &doc, why, sizeof(why)) < 0) {
        message = arena_strdup(req->arena, why);
        step(steps, "discovery", false, message);
        goto out;
    }
    step(steps, "discovery", true,
         arena_printf(req->arena, "found the discovery document at %s", url));
    const char *problem = oidc_discovery_problem(req->arena, doc, issuer);
    if (problem) {
        message = problem;
        step(steps, "issuer", false, problem);
        goto out;
    }
    step(steps, "issuer", true,
         "the provider names the configured issuer and offers the code flow with PKCE and RS256");
    const char *jwks_uri = json_string_value(json_object_get(doc, "jwks_uri"));
    json_object_set_new(out, "authorization_endpoint",
                        json_incref(json_object_get(doc, "authorization_endpoint")));
    json_object_set_new(out, "token_endpoint", json_incref(json_object_get(doc, "token_endpoint")));
    json_object_set_new(out, "jwks_uri", json_string(jwks_uri));
    r = (oidc_http_req){jwks_uri, ca_pem, timeout, 512 * 1024, NULL, NULL, NULL};
    if (oidc_http_json(req->arena, &r, "a key set (JWKS)", &jwks, why, sizeof(why)) < 0) {
        message = arena_strdup(req->arena, why);
        step(steps, "keys", false, message);
        goto out;
    }
    const json_t *keys = json_object_get(jwks, "keys");
    size_t usable = oidc_jwks_rs256_count(req->arena, jwks);
    json_object_set_new(out, "rs256_keys", json_integer((json_int_t)usable));
    if (!usable) {
        message = arena_printf(req->arena,
                               "the key set at %s holds %zu keys, but none is an RSA key of at "
                               "least 2048 bits for RS256 signatures, the only kind BIC accepts",
                               jwks_uri, json_is_array(keys) ? json_array_size(keys) : 0);
        step(steps, "keys", false, message);
        goto out;
    }
    step(steps, "keys", true,
         arena_printf(req->arena, "%zu RS256 signing key%s at %s", usable, usable == 1 ? "" : "s",
                      jwks_uri));
    *ok = true;
    message = arena_printf(req->arena,
                           "The provider answers and publishes %zu RS256 signing key%s. Register "
                           "this redirect address at the provider: %s",
                           usable, usable == 1 ? "" : "s", callback ? callback : "(unknown)");
out:
    json_object_set_new(out, "ok", json_boolean(*ok));
    json_object_set_new(out, "message", json_string(message));
    json_object_set_new(out, "steps", steps);
    json_object_set_new(out, "callback_uri", callback ? json_string(callback) : json_null());
    return out;
}

bic_err h_oidc_providers_test(bic_req *req, bic_resp *resp)
{
    long long id;
    bic_rows rows;
    bic_err e = param_id(req, 0, &id);
    if (e == BIC_E_OK) e = load_provider(req, req->db, STMT_oidc_provider_get, id, &rows);
    if (e != BIC_E_OK) return e;
    bool ok;
    json_t *out = probe(req, rows_str(&rows, 0, 3), rows_str(&rows, 0, 13),
                        callback_uri(req, rows_str(&rows, 0, 12)), &ok);
    audit_write(req, "oidc.provider.test", "oidc_provider", req->param[0], ok,
                json_pack("{s:s, s:O}", "name", rows_str(&rows, 0, 1), "message",
                          json_object_get(out, "message")));
    resp_json(req, resp, 200, out);
    return BIC_E_OK;
}

/* ---- group mappings ---- */

static json_t *map_json(bic_req *req, const bic_rows *r, size_t i)
{
    return json_pack("{s:I, s:I, s:s, s:I, s:s, s:o}", "id", (json_int_t)rows_int(r, i, 0),
                     "provider_id", (json_int_t)rows_int(r, i, 1), "claim_value", rows_str(r, i, 2),
                     "group_id", (json_int_t)rows_int(r, i, 3), "group_name", rows_str(r, i, 4),
                     "created_at", json_time(req, rows_str(r, i, 5)));
}

static bic_err map_add(bic_req *req, bic_db *db, long long id, const bic_rows *p, long long *map_id)
{
    bic_rows g;
    long long gid = json_get_int(req->json, "group_id", 0);
    const char *value = json_get_str(req->json, "claim_value", "");
    bic_err e = DB_EXEC(db, req->arena, STMT_group_get, &g, P_INT(gid));
    if (e != BIC_E_OK) return fail(req, e, "group lookup failed");
    if (g.nrows != 1) return fail(req, BIC_E_VALIDATION, "there is no group %lld", gid);
    e = DB_EXEC(db, req->arena, STMT_oidc_group_map_insert, NULL, P_INT(id), P_STR(value),
                P_INT(gid));
    if (e == BIC_E_CONFLICT)
        return fail(req, e, "'%s' already maps to the group '%s'", value, rows_str(&g, 0, 1));
    if (e != BIC_E_OK) return fail(req, e, "cannot add the group mapping");
    *map_id = (long long)db_insert_id(db);
    return audit_write(req, "oidc.group_map.create", "oidc_provider", req->param[0], true,
                       json_pack("{s:s, s:I, s:s, s:I, s:s}", "provider", rows_str(p, 0, 1),
                                 "map_id", (json_int_t)*map_id, "claim_value", value, "group_id",
                                 (json_int_t)gid, "group", rows_str(&g, 0, 1)));
}

static bic_err map_remove(bic_req *req, bic_db *db, long long id, const bic_rows *p,
                          const bic_rows *m)
{
    (void)p;
    long long map_id = rows_int(m, 0, 0);
    bic_err e = DB_EXEC(db, req->arena, STMT_oidc_group_map_delete, NULL, P_INT(map_id), P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "cannot remove the group mapping");
    return audit_write(req, "oidc.group_map.delete", "oidc_provider", req->param[0], true,
                       json_pack("{s:I, s:s, s:I, s:s}", "map_id", (json_int_t)map_id,
                                 "claim_value", rows_str(m, 0, 2), "group_id",
                                 (json_int_t)rows_int(m, 0, 3), "group", rows_str(m, 0, 4)));
}

static const bic_group_map_source oidc_maps = {
    .noun = "provider",
    .path = "/api/v1/oidc-providers",
    .load = load_provider,
    .get = STMT_oidc_provider_get,
    .get_for_update = STMT_oidc_provider_get_for_update,
    .list = STMT_oidc_group_map_list,
    .map_get = STMT_oidc_group_map_get,
    .item = map_json,
    .gone = BIC_E_CONFLICT,
    .add = map_add,
    .remove = map_remove,
};

bic_err h_oidc_group_maps_list(bic_req *req, bic_resp *resp)
{
    return group_maps_list(req, resp, &oidc_maps);
}

bic_err h_oidc_group_maps_create(bic_req *req, bic_resp *resp)
{
    return group_maps_add(req, resp, &oidc_maps);
}

bic_err h_oidc_group_maps_delete(bic_req *req, bic_resp *resp)
{
    return group_maps_remove(req, resp, &oidc_maps);
}

/* ---- sign-in ---- */

bic_err h_auth_oidc_providers(bic_req *req, bic_resp *resp)
{
    bic_rows rows;
    bic_err e = DB_EXEC0(req->db, req->arena, STMT_oidc_provider_buttons, &rows);
    if (e != BIC_E_OK) return fail(req, e, "OIDC provider list failed");
    json_t *items = json_array();
    for (size_t i = 0; i < rows.nrows; i++) {
        const char *shown = rows_str(&rows, i, 2);
        json_array_append_new(items,
                              json_pack("{s:I, s:s, s:s}", "id", (json_int_t)rows_int(&rows, i, 0),
                                        "name", rows_str(&rows, i, 1), "display_name",
                                        shown && *shown ? shown : rows_str(&rows, i, 1)));
    }
    resp_json(req, resp, 200, json_pack("{s:o}", "items", items));
    return BIC_E_OK;
}

/* A provider as the sign-in needs it (a row of OIDC_LOGIN_COLS). */
struct provider {
    long long id;
    const char *name, *issuer, *client_id, *token_auth, *scopes;
    const char *username_claim, *display_name_claim, *email_claim, *groups_claim;
    const char *redirect_uri, *ca_pem, *stamp;
    const unsigned char *secret_enc;
    size_t secret_len;
    bool enabled;
};

/* *found false when there is no such provider. A database error is reported. */
static bic_err provider_load(bic_req *req, long long id, struct provider *p, bool *found)
{
    bic_rows r;
    *found = false;
    bic_err e = DB_EXEC(req->db, req->arena, STMT_oidc_provider_login, &r, P_INT(id));
    if (e != BIC_E_OK) return fail(req, e, "OIDC provider lookup failed");
    if (r.nrows != 1) return BIC_E_OK;
    *found = true;
    *p = (struct provider){
        .id = rows_int(&r, 0, 0),
        .name = rows_str(&r, 0, 1),
        .issuer = rows_str(&r, 0, 2),
        .client_id = rows_str(&r, 0, 3),
        .secret_enc = (const unsigned char *)rows_str(&r, 0, 4),
        .secret_len = r.len[4],
        .token_auth = rows_str(&r, 0, 5),
        .scopes = rows_str(&r, 0, 6),
        .username_claim = rows_str(&r, 0, 7),
        .display_name_claim = rows_str(&r, 0, 8),
        .email_claim = rows_str(&r, 0, 9),
        .groups_claim = rows_str(&r, 0, 10),
        .redirect_uri = rows_str(&r, 0, 11),
        .ca_pem = rows_str(&r, 0, 12),
        .enabled = rows_int(&r, 0, 13) != 0,
        .stamp = rows_str(&r, 0, 14),
    };
    return BIC_E_OK;
}

static oidc_source source_of(bic_req *req, const struct provider *p)
{
    return (oidc_source){p->id,     p->stamp ? p->stamp : "",       p->issuer,
                         p->ca_pem, req->cfg->oidc_http_timeout_ms, req->cfg->oidc_cache_ttl};
}

static const char *portal_path(const char *portal)
{
    return portal && !strcmp(portal, "admin") ? "/admin/" : "/";
}

/* Ends a browser step with a redirect to the portal, with query (e.g. "oidc_error=state") or
 * none. */
static bic_err back(bic_req *req, bic_resp *resp, const char *portal, const char *query)
{
    resp->status = 302;
    resp_header(req, resp, "Location: %s%s%s", portal_path(portal), query ? "?" : "",
                query ? query : "");
    return BIC_E_OK;
}

/*
 * A refused callback: the failed auth.oidc.login audit row (what went wrong in words, never a
 * token or secret), an error log line, and the way back to the sign-in page with code, which
 * the page translates: state, denied, provider, token, account, disabled, locked, unavailable.
 */
__attribute__((format(printf, 8, 9))) static bic_err
refuse(bic_req *req, bic_resp *resp, const char *portal, const struct provider *p,
       long long user_id, const char *username, const char *code, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    const char *text = printable(req, why, sizeof(why) - 1);
    json_t *sum = json_pack("{s:s, s:s}", "error", code, "reason", text);
    if (p) json_object_set_new(sum, "provider", json_string(p->name));
    audit_write_as(req, user_id, username ? username : "", "auth.oidc.login", "oidc_provider",
                   p ? arena_printf(req->arena, "%lld", p->id) : "", false, sum);
    LOG_INFO(req->request_id, "OIDC sign-in refused (%s): %s", code, text);
    return back(req, resp, portal, arena_printf(req->arena, "oidc_error=%s", code));
}

/* A cookie value shaped like random_token(): 43 base64url characters. */
static bool token_shaped(const char *s)
{
    return s && strlen(s) == RANDOM_TOKEN_LEN && chars_in(s, "-_");
}

struct start_ctx {
    bic_req *req;
    long long provider_id;
    unsigned char state_hash[32], binding_hash[32];
    const char *nonce, *verifier, *redirect, *portal;
};

static bic_err start_tx(bic_db *db, void *arg)
{
    struct start_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = DB_EXEC0(db, req->arena, STMT_oidc_state_prune, NULL);
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_oidc_state_insert, NULL, P_BLOB(c->state_hash, 32),
                    P_INT(c->provider_id), P_BLOB(c->binding_hash, 32), P_STR(c->nonce),
                    P_STR(c->verifier), P_STR(c->redirect), P_STR(c->portal),
                    P_STR(req->remote_addr ? req->remote_addr : ""),
                    P_INT(req->cfg->oidc_state_ttl));
    return e == BIC_E_OK ? e : fail(req, e, "cannot store the sign-in state");
}

bic_err h_auth_oidc_start(bic_req *req, bic_resp *resp)
{
    const char *q = req_query(req, "portal");
    const char *portal = q && !strcmp(q, "admin") ? "admin" : "user";
    char *end;
    long long id = strtoll(req->param[0], &end, 10);
    struct provider p;
    bool found = false;
    if (*end || id <= 0 || provider_load(req, id, &p, &found) != BIC_E_OK || !found || !p.enabled)
        return back(req, resp, portal, "oidc_error=unavailable");
    bic_rows rows;
    const char *addr = req->remote_addr ? req->remote_addr : "";
    bic_err e = DB_EXEC(req->db, req->arena, STMT_oidc_state_open_count, &rows, P_STR(addr));
    if (e != BIC_E_OK) {
        fail(req, e, "cannot count the sign-ins in flight");
        return back(req, resp, portal, "oidc_error=unavailable");
    }
    if (rows_int(&rows, 0, 0) >= OIDC_OPEN_PER_ADDR)
        return back(req, resp, portal, "oidc_error=rate_limited");
    oidc_source src = source_of(req, &p);
    oidc_meta m;
    char why[768];
    if (oidc_meta_get(req->arena, &src, false, &m, why, sizeof(why)) < 0) {
        LOG_WARN(req->request_id, "OIDC provider '%s': %s", p.name, why);
        return back(req, resp, portal, "oidc_error=provider");
    }
    const char *redirect = callback_uri(req, p.redirect_uri);
    if (!redirect) {
        fail(req, BIC_E_INTERNAL, "no host to build the OIDC callback address from");
        return back(req, resp, portal, "oidc_error=unavailable");
    }
    char state[RANDOM_TOKEN_LEN + 1], nonce[RANDOM_TOKEN_LEN + 1], verifier[RANDOM_TOKEN_LEN + 1];
    char binding[RANDOM_TOKEN_LEN + 1], challenge[OIDC_PKCE_LEN + 1];
    const char *have = req_cookie(req, COOKIE_OIDC);
    if (random_token(state) < 0 || random_token(nonce) < 0 || random_token(verifier) < 0 ||
        (!token_shaped(have) && random_token(binding) < 0)) {
        fail(req, BIC_E_INTERNAL, "no randomness");
        return back(req, resp, portal, "oidc_error=unavailable");
    }
    /* a browser with a sign-in in flight keeps its binding, so two tabs do not undo each other */
    if (token_shaped(have)) snprintf(binding, sizeof(binding), "%s", have);
    oidc_pkce_s256(verifier, challenge);
    struct start_ctx c = {req, p.id, {0}, {0}, nonce, verifier, redirect, portal};
    sha256_bytes(state, c.state_hash);
    sha256_bytes(binding, c.binding_hash);
    e = db_tx(req->db, start_tx, &c);
    if (e != BIC_E_OK) return back(req, resp, portal, "oidc_error=unavailable");
    /* Lax, not Strict: the provider's redirect back is a cross-site navigation */
    resp_header(req, resp, "Set-Cookie: %s=%s; Path=/; Max-Age=%ld; Secure; HttpOnly; SameSite=Lax",
                COOKIE_OIDC, binding, req->cfg->oidc_state_ttl);
    resp->status = 302;
    resp_header(req, resp,
                "Location: %s%sresponse_type=code&client_id=%s&redirect_uri=%s&scope=%s&state=%s"
                "&nonce=%s&code_challenge=%s&code_challenge_method=S256",
                m.authorization_endpoint, strchr(m.authorization_endpoint, '?') ? "&" : "?",
                oidc_url_encode(req->arena, p.client_id), oidc_url_encode(req->arena, redirect),
                oidc_url_encode(req->arena, p.scopes), state, nonce, challenge);
    OPENSSL_cleanse(verifier, sizeof(verifier));
    OPENSSL_cleanse(binding, sizeof(binding));
    return BIC_E_OK;
}

enum state_outcome { STATE_OK, STATE_UNKNOWN, STATE_USED, STATE_EXPIRED, STATE_BINDING };

struct state_ctx {
    bic_req *req;
    unsigned char hash[32];
    const char *binding; /* the browser's binding cookie, or NULL */
    enum state_outcome outcome;
    long long provider_id;
    const char *nonce, *verifier, *redirect, *portal;
};

/* Spends the state whatever happens next, so each one is presented once. */
static bic_err state_tx(bic_db *db, void *arg)
{
    struct state_ctx *c = arg;
    bic_req *req = c->req;
    bic_rows r;
    c->outcome = STATE_UNKNOWN;
    bic_err e = DB_EXEC(db, req->arena, STMT_oidc_state_lock, &r, P_BLOB(c->hash, 32));
    if (e != BIC_E_OK) return fail(req, e, "cannot look up the sign-in state");
    if (r.nrows != 1) return BIC_E_OK;
    c->provider_id = rows_int(&r, 0, 1);
    c->nonce = rows_str(&r, 0, 3);
    c->verifier = rows_str(&r, 0, 4);
    c->redirect = rows_str(&r, 0, 5);
    c->portal = rows_str(&r, 0, 6);
    if (rows_int(&r, 0, 7)) {
        c->outcome = STATE_USED;
        return BIC_E_OK;
    }
    e = DB_EXEC(db, req->arena, STMT_oidc_state_use, NULL, P_INT(rows_int(&r, 0, 0)));
    if (e != BIC_E_OK) return fail(req, e, "cannot spend the sign-in state");
    unsigned char bh[32];
    if (rows_int(&r, 0, 8))
        c->outcome = STATE_EXPIRED;
    else if (!token_shaped(c->binding) || r.len[2] != 32 ||
             (sha256_bytes(c->binding, bh), CRYPTO_memcmp(bh, rows_str(&r, 0, 2), 32) != 0))
        c->outcome = STATE_BINDING;
    else
        c->outcome = STATE_OK;
    return BIC_E_OK;
}

/* Exchanges the code at the token endpoint; *id_token (arena) or -1 with why. */
static int token_exchange(bic_req *req, const struct provider *p, const oidc_meta *m,
                          const char *code, const struct state_ctx *sc, const char **id_token,
                          char *why, size_t whylen)
{
    bic_arena *a = req->arena;
    unsigned char secret[OIDC_SECRET_MAX + 1] = "";
    bool none = !strcmp(p->token_auth, "none"), post = !strcmp(p->token_auth, "client_secret_post");
    if (!none) {
        const unsigned char *key;
        if (!p->secret_enc) {
            snprintf(why, whylen, "no client secret is configured for token_auth %s",
                     p->token_auth);
            return -1;
        }
        if (seal_key(req, SEAL_OIDC, &key) != BIC_E_OK ||
            p->secret_len > OIDC_SECRET_MAX + SEAL_OVERHEAD ||
            seal_decrypt(key, secret_aad(req, p->id), p->secret_enc, p->secret_len, secret) < 0) {
            snprintf(why, whylen,
                     "the stored client secret does not open (was [auth] secret_file replaced?); "
                     "enter it again");
            return -1;
        }
    }
    char *form = arena_printf(a,
                              "grant_type=authorization_code&code=%s&redirect_uri=%s"
                              "&code_verifier=%s%s%s%s%s",
                              oidc_url_encode(a, code), oidc_url_encode(a, sc->redirect),
                              oidc_url_encode(a, sc->verifier), none || post ? "&client_id=" : "",
                              none || post ? oidc_url_encode(a, p->client_id) : "",
                              post ? "&client_secret=" : "",
                              post ? oidc_url_encode(a, (const char *)secret) : "");
    /* RFC 6749 2.3.1: both parts are form-urlencoded before they go into Basic */
    char *user = none || post ? NULL : oidc_url_encode(a, p->client_id);
    char *pass = none || post ? NULL : oidc_url_encode(a, (const char *)secret);
    oidc_http_req r = {
        m->token_endpoint, p->ca_pem, req->cfg->oidc_http_timeout_ms, 64 * 1024, form, user, pass};
    oidc_http_answer ans;
    int rc = oidc_http(a, &r, &ans, why, whylen);
    OPENSSL_cleanse(secret, sizeof(secret));
    OPENSSL_cleanse(form, strlen(form));
    if (pass) OPENSSL_cleanse(pass, strlen(pass));
    if (rc < 0) return -1;
    json_t *j = json_loadb(ans.body, ans.len, 0, NULL);
    arena_defer(a, (void (*)(void *))json_decref, j);
    if (ans.status != 200) {
        const char *err = json_string_value(json_object_get(j, "error"));
        const char *desc = json_string_value(json_object_get(j, "error_description"));
        snprintf(why, whylen, "the token endpoint answered HTTP %ld%s%s%s%s%s", ans.status,
                 err ? ": " : "", err ? printable(req, err, 64) : "", desc ? " (" : "",
                 desc ? printable(req, desc, 160) : "", desc ? ")" : "");
        return -1;
    }
    const char *tok = json_string_value(json_object_get(j, "id_token"));
    if (!json_is_object(j) || !tok) {
        snprintf(why, whylen, "the token endpoint's answer holds no id_token");
        return -1;
    }
    *id_token = arena_strdup(a, tok);
    return 0;
}

/* A claim by name; a name with dots that is not a top-level claim walks nested objects
 * ("realm_access.roles"). NULL when absent or name is empty. */
static const json_t *claim(const json_t *claims, const char *name, bic_arena *a)
{
    if (!name || !*name) return NULL;
    const json_t *v = json_object_get(claims, name);
    if (v || !strchr(name, '.')) return v;
    char *path = arena_strdup(a, name), *save = NULL;
    v = claims;
    for (char *part = strtok_r(path, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
        v = json_object_get(v, part);
    return v;
}

/* Text fit for users.display_name (at most max bytes, whole UTF-8 characters, no control
 * characters), or NULL when the claim is not a string. */
static const char *clean_text(bic_req *req, const json_t *v, size_t max)
{
    if (!json_is_string(v)) return NULL;
    const unsigned char *s = (const unsigned char *)json_string_value(v);
    char *out = arena_alloc(req->arena, max + 1);
    size_t o = 0;
    while (*s) {
        size_t n = *s < 0x80 ? 1 : *s < 0xe0 ? 2 : *s < 0xf0 ? 3 : 4;
        bool control = *s < 0x20 || *s == 0x7f || (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f);
        if (o + n > max) break;
        if (!control)
            for (size_t i = 0; i < n && s[i]; i++)
                out[o++] = (char)s[i];
        for (size_t i = 0; i < n && *s; i++)
            s++;
    }
    out[o] = '\0';
    return out;
}

struct provision_ctx {
    bic_req *req;
    const struct provider *p;
    const char *subject, *username, *display, *email;
    const char **groups; /* the groups claim's values */
    size_t ngroups;
    /* out */
    long long user_id;
    const char *name; /* the account's user name */
    bool disabled, created;
    const char *refusal; /* why the account cannot be used, or NULL */
};

/* In the transaction: makes the user's memberships of the provider's mapped groups follow the
 * groups claim, audited auth.oidc.groups when something changed. */
static bic_err apply_groups(bic_db *db, struct provision_ctx *c)
{
    bic_req *req = c->req;
    bic_rows maps, have;
    bic_err e = DB_EXEC(db, req->arena, STMT_oidc_group_map_values, &maps, P_INT(c->p->id));
    if (e == BIC_E_OK)
        e = DB_EXEC(db, req->arena, STMT_oidc_user_group_ids, &have, P_INT(c->user_id));
    if (e != BIC_E_OK) return fail(req, e, "cannot read the group mappings");
    json_t *added = json_array(), *removed = json_array();
    for (size_t i = 0; i < maps.nrows; i++) {
        long long gid = rows_int(&maps, i, 1);
        bool seen = false, want = false, member = false;
        for (size_t k = 0; k < i; k++)
            if (rows_int(&maps, k, 1) == gid) seen = true;
        if (seen) continue; /* each group once */
        for (size_t k = i; k < maps.nrows && !want; k++) {
            if (rows_int(&maps, k, 1) != gid) continue;
            for (size_t g = 0; g < c->ngroups && !want; g++)
                if (!strcmp(c->groups[g], rows_str(&maps, k, 0))) want = true;
        }
        for (size_t k = 0; k < have.nrows; k++)
            if (rows_int(&have, k, 0) == gid) member = true;
        if (want == member) continue;
        e = DB_EXEC(db, req->arena, want ? STMT_group_member_add : STMT_group_member_remove, NULL,
                    P_INT(gid), P_INT(c->user_id));
        if (e != BIC_E_OK) {
            json_decref(added);
            json_decref(removed);
            return fail(req, e, "cannot change the group memberships");
        }
        json_array_append_new(want ? added : removed, json_integer(gid));
    }
    if (!json_array_size(added) && !json_array_size(removed)) {
        json_decref(added);
        json_decref(removed);
        return BIC_E_OK;
    }
    return audit_write_as(
        req, c->user_id, c->name, "auth.oidc.groups", "user",
        arena_printf(req->arena, "%lld", c->user_id), true,
        json_pack("{s:s, s:o, s:o}", "provider", c->p->name, "added", added, "removed", removed));
}

static bic_err provision_tx(bic_db *db, void *arg)
{
    struct provision_ctx *c = arg;
    bic_req *req = c->req;
    c->refusal = NULL;
    c->created = false;
    bic_rows r;
    bic_err e =
        DB_EXEC(db, req->arena, STMT_oidc_identity_get, &r, P_INT(c->p->id), P_STR(c->subject));
    if (e != BIC_E_OK) return fail(req, e, "cannot look up the OIDC identity");
    if (r.nrows == 1) {
        c->user_id = rows_int(&r, 0, 0);
        c->name = rows_str(&r, 0, 1);
        c->disabled = rows_int(&r, 0, 2) != 0;
        if (c->disabled) return BIC_E_OK;
        e = DB_EXEC(db, req->arena, STMT_oidc_user_profile, NULL, P_STR(c->display),
                    P_STR(c->email), P_INT(c->user_id));
        if (e == BIC_E_OK)
            e = DB_EXEC(db, req->arena, STMT_oidc_identity_touch, NULL, P_INT(c->p->id),
                        P_STR(c->subject));
        if (e != BIC_E_OK) return fail(req, e, "cannot update the OIDC user");
    } else {
        e = DB_EXEC(db, req->arena, STMT_oidc_user_by_name, &r, P_STR(c->username));
        if (e != BIC_E_OK) return fail(req, e, "cannot look up the user name");
        if (r.nrows == 1) {
            /* never take over an account: a local one, or another provider's */
            c->refusal =
                arena_printf(req->arena,
                             "an account named '%s' already exists (%s) and is not linked to this "
                             "provider's subject; it is never taken over",
                             c->username, rows_str(&r, 0, 1));
            return BIC_E_OK;
        }
        e = DB_EXEC(db, req->arena, STMT_oidc_user_insert, NULL, P_STR(c->username),
                    P_STR(c->display ? c->display : ""), P_STR(c->email ? c->email : ""));
        if (e == BIC_E_CONFLICT) {
            c->refusal = arena_printf(req->arena, "an account named '%s' was created meanwhile",
                                      c->username);
            return BIC_E_OK;
        }
        if (e != BIC_E_OK) return fail(req, e, "cannot create the OIDC user");
        c->user_id = (long long)db_insert_id(db);
        c->name = c->username;
        c->disabled = false;
        c->created = true;
        e = DB_EXEC(db, req->arena, STMT_oidc_identity_insert, NULL, P_INT(c->p->id),
                    P_STR(c->subject), P_INT(c->user_id));
        if (e != BIC_E_OK) return fail(req, e, "cannot link the OIDC identity");
        e = audit_write_as(req, c->user_id, c->name, "auth.oidc.user_create", "user",
                           arena_printf(req->arena, "%lld", c->user_id), true,
                           json_pack("{s:s, s:s, s:s}", "username", c->name, "provider", c->p->name,
                                     "subject", c->subject));
        if (e != BIC_E_OK) return e;
    }
    return *c->p->groups_claim ? apply_groups(db, c) : BIC_E_OK;
}

struct finish_ctx {
    bic_req *req;
    bic_resp *resp;
    size_t nheaders;
    long long user_id;
    const char *username, *provider;
    bic_mfa_step step;
    char token[RANDOM_TOKEN_LEN + 1];
    const char *csrf;
};

static bic_err challenge_tx(bic_db *db, void *arg)
{
    struct finish_ctx *c = arg;
    bic_req *req = c->req;
    bic_err e = mfa_challenge_create(req, db, c->user_id, c->step, c->token);
    if (e != BIC_E_OK) return e;
    return audit_write_as(
        req, c->user_id, c->username, "auth.mfa.challenge", "user", c->username, true,
        json_pack("{s:s, s:s, s:s}", "step", c->step == MFA_ENROLL ? "enroll" : "verify", "method",
                  "oidc", "provider", c->provider));
}

/* The sign-in succeeded: a session like a password sign-in's, audited with method oidc. */
static bic_err login_tx(bic_db *db, void *arg)
{
    struct finish_ctx *c = arg;
    return auth_login_ok(db, c->req, c->resp, c->nheaders, c->user_id, c->username,
                         json_pack("{s:s, s:s}", "method", "oidc", "provider", c->provider),
                         &c->csrf);
}

static bool username_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && chars_in(s, "._@-");
}

bic_err h_auth_oidc_callback(bic_req *req, bic_resp *resp)
{
    struct state_ctx sc = {req,  {0},   req_cookie(req, COOKIE_OIDC), STATE_UNKNOWN, 0, NULL, NULL,
                           NULL, "user"};
    const char *state = req_query(req, "state");
    if (!token_shaped(state))
        return refuse(req, resp, "user", NULL, 0, NULL, "state",
                      "the callback carried no state or a malformed one");
    sha256_bytes(state, sc.hash);
    bic_err e = db_tx(req->db, state_tx, &sc);
    if (e != BIC_E_OK) return back(req, resp, "user", "oidc_error=unavailable");
    const char *portal = sc.portal;
    struct provider p;
    bool found = false;
    if (sc.outcome != STATE_UNKNOWN && provider_load(req, sc.provider_id, &p, &found) != BIC_E_OK)
        return back(req, resp, portal, "oidc_error=unavailable");
    const struct provider *pp = found ? &p : NULL;
    switch (sc.outcome) {
    case STATE_UNKNOWN:
        return refuse(req, resp, portal, NULL, 0, NULL, "state", "the state is unknown");
    case STATE_USED:
        return refuse(req, resp, portal, pp, 0, NULL, "state", "the state was already used");
    case STATE_EXPIRED:
        return refuse(req, resp, portal, pp, 0, NULL, "state", "the state expired");
    case STATE_BINDING:
        return refuse(req, resp, portal, pp, 0, NULL, "state",
                      "the sign-in was started in another browser (binding cookie missing or "
                      "different)");
    case STATE_OK:
        break;
    }
    if (!found || !p.enabled)
        return refuse(req, resp, portal, pp, 0, NULL, "unavailable",
                      "the provider was removed or disabled");
    const char *perr = req_query(req, "error");
    if (perr) {
        const char *desc = req_query(req, "error_description");
        return refuse(req, resp, portal, pp, 0, NULL,
                      !strcmp(perr, "access_denied") ? "denied" : "provider",
                      "the provider answered error '%s'%s%s%s", printable(req, perr, 64),
                      desc ? " (" : "", desc ? printable(req, desc, 160) : "", desc ? ")" : "");
    }
    /* RFC 9207: an authorization response that names its issuer must name this one */
    const char *iss = req_query(req, "iss");
    if (iss && strcmp(iss, p.issuer))
        return refuse(req, resp, portal, pp, 0, NULL, "provider",
                      "the authorization response came from the issuer '%s'",
                      printable(req, iss, 200));
    const char *code = req_query(req, "code");
    if (!code || !*code || strlen(code) > 2048)
        return refuse(req, resp, portal, pp, 0, NULL, "provider",
                      "the provider sent no authorization code");

    oidc_source src = source_of(req, &p);
    oidc_meta m;
    char why[768];
    const char *id_token = NULL;
    if (oidc_meta_get(req->arena, &src, false, &m, why, sizeof(why)) < 0 ||
        token_exchange(req, &p, &m, code, &sc, &id_token, why, sizeof(why)) < 0)
        return refuse(req, resp, portal, pp, 0, NULL, "provider", "%s", why);
    oidc_expect x = {p.issuer,    p.client_id, sc.nonce, time(NULL), req->cfg->oidc_clock_skew,
                     OIDC_MAX_AGE};
    const char *kid;
    json_t *claims;
    oidc_token_status st = oidc_id_token_verify(req->arena, id_token, m.jwks, &x, &kid, &claims);
    if (st == OIDC_TOKEN_UNKNOWN_KEY) {
        /* the provider may have rotated its keys since they were cached */
        if (oidc_meta_get(req->arena, &src, true, &m, why, sizeof(why)) < 0)
            return refuse(req, resp, portal, pp, 0, NULL, "provider", "%s", why);
        st = oidc_id_token_verify(req->arena, id_token, m.jwks, &x, &kid, &claims);
    }
    if (st != OIDC_TOKEN_OK)
        return refuse(req, resp, portal, pp, 0, NULL, "token", "the ID token was refused: %s%s%s",
                      oidc_token_status_name(st), kid ? ", kid " : "",
                      kid ? printable(req, kid, 64) : "");
    arena_defer(req->arena, (void (*)(void *))json_decref, claims);

    const json_t *uname = claim(claims, p.username_claim, req->arena);
    if (!json_is_string(uname) || !username_ok(json_string_value(uname)))
        return refuse(req, resp, portal, pp, 0, NULL, "account",
                      "the %s claim is missing or not a user name BIC accepts (1 to 64 letters, "
                      "digits and . _ @ -)",
                      p.username_claim);
    struct provision_ctx pc = {req, &p, json_string_value(json_object_get(claims, "sub")),
                               json_string_value(uname)};
    pc.display = clean_text(req, claim(claims, p.display_name_claim, req->arena), 128);
    const char *email = clean_text(req, claim(claims, p.email_claim, req->arena), 254);
    pc.email = email && strchr(email, '@') && !strchr(email, ' ') ? email : NULL;
    const json_t *gv = claim(claims, p.groups_claim, req->arena);
    size_t ng = json_is_array(gv) ? json_array_size(gv) : json_is_string(gv) ? 1 : 0;
    pc.groups = arena_alloc(req->arena, (ng + 1) * sizeof(*pc.groups));
    if (json_is_string(gv)) pc.groups[pc.ngroups++] = json_string_value(gv);
    for (size_t i = 0; json_is_array(gv) && i < ng; i++)
        if (json_is_string(json_array_get(gv, i)))
            pc.groups[pc.ngroups++] = json_string_value(json_array_get(gv, i));
    e = db_tx(req->db, provision_tx, &pc);
    if (e != BIC_E_OK) return back(req, resp, portal, "oidc_error=unavailable");
    if (pc.refusal)
        return refuse(req, resp, portal, pp, 0, pc.username, "account", "%s", pc.refusal);
    if (pc.disabled)
        return refuse(req, resp, portal, pp, pc.user_id, pc.name, "disabled",
                      "the account is disabled");

    bic_rows rows;
    e = DB_EXEC(req->db, req->arena, STMT_throttle_locked, &rows, P_STR(pc.name));
    if (e != BIC_E_OK) {
        fail(req, e, "throttle lookup failed");
        return back(req, resp, portal, "oidc_error=unavailable");
    }
    if (rows.nrows)
        return refuse(req, resp, portal, pp, pc.user_id, pc.name, "locked",
                      "the account is locked after failed sign-ins");
    struct finish_ctx f = {req, resp, resp->nheaders, pc.user_id, pc.name, p.name, MFA_NONE,
                           {0}, NULL};
    if (mfa_step_for(req, pc.user_id, &f.step) != BIC_E_OK)
        return back(req, resp, portal, "oidc_error=unavailable");
    if (f.step != MFA_NONE) {
        /* the provider vouched for the person; BIC's own second factor still applies */
        if (db_tx(req->db, challenge_tx, &f) != BIC_E_OK)
            return back(req, resp, portal, "oidc_error=unavailable");
        resp_header(req, resp,
                    "Set-Cookie: %s=%s; Path=/; Max-Age=%d; Secure; HttpOnly; SameSite=Strict",
                    COOKIE_OIDC_MFA, f.token, MFA_CHALLENGE_TTL);
        OPENSSL_cleanse(f.token, sizeof(f.token));
        return back(req, resp, portal, "oidc=mfa");
    }
    if (db_tx(req->db, login_tx, &f) != BIC_E_OK) {
        resp->nheaders = f.nheaders;
        return back(req, resp, portal, "oidc_error=unavailable");
    }
    return back(req, resp, portal, NULL);
}

bic_err h_auth_oidc_mfa(bic_req *req, bic_resp *resp)
{
    const char *tok = req_cookie(req, COOKIE_OIDC_MFA);
    /* read once: the page keeps the token in memory from here on */
    resp_header(req, resp, "Set-Cookie: %s=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
                COOKIE_OIDC_MFA);
    bic_rows ch;
    bic_err e = mfa_challenge_find(req, tok ? tok : "", &ch);
    if (e != BIC_E_OK) return e;
    resp_json(req, resp, 200,
              json_pack("{s:b, s:s, s:s, s:i, s:s}", "mfa_required", true, "mfa_step",
                        rows_str(&ch, 0, 2), "mfa_token", tok, "expires_in", MFA_CHALLENGE_TTL,
                        "username", rows_str(&ch, 0, 4)));
    return BIC_E_OK;
}
