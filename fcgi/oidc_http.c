/*
 * oidc_http.c - HTTPS from bicd to OpenID Connect providers (libcurl), with every failure put
 * in plain words for the admin's "test connection" and the error log, and the process-wide
 * cache of each provider's endpoints and key set. Declared in oidc.h.
 */
#include "oidc.h"

#include <curl/curl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sink {
    bic_arena *a;
    char *buf;
    size_t len, cap, max;
    bool too_big;
};

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n > s->max) {
        s->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        while (cap < s->len + n + 1)
            cap *= 2;
        if (cap > s->max + 1) cap = s->max + 1;
        char *nb = arena_alloc(s->a, cap);
        if (s->len) memcpy(nb, s->buf, s->len);
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
    s->buf[s->len] = '\0';
    return n;
}

/* The host[:port] part of an https:// address, for messages. */
static const char *host_of(bic_arena *a, const char *url)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t n = strcspn(p, "/?#");
    const char *at = memchr(p, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    return arena_strndup(a, p, n);
}

/* Plain words for a certificate that did not verify (OpenSSL's verify result). */
static void explain_certificate(CURL *c, const char *host, const char *cerr, char *why,
                                size_t whylen)
{
    long vr = 0;
    curl_easy_getinfo(c, CURLINFO_SSL_VERIFYRESULT, &vr);
    switch (vr) {
    case X509_V_OK:
        /* the chain verified, so curl's own host name check failed */
        snprintf(why, whylen,
                 "the TLS certificate of %s does not name that host (%s); use the host name the "
                 "certificate was issued for",
                 host, cerr);
        return;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        snprintf(why, whylen, "the TLS certificate of %s has expired", host);
        return;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        snprintf(why, whylen,
                 "the TLS certificate of %s is not valid yet (check this server's clock)", host);
        return;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        snprintf(why, whylen,
                 "the TLS certificate of %s is not trusted: it was not issued by a CA that BIC "
                 "trusts (%s); put the certificate of the CA that issued it into the provider's "
                 "CA bundle",
                 host, X509_verify_cert_error_string(vr));
        return;
    default:
        snprintf(why, whylen, "the TLS certificate of %s is not trusted: %s", host,
                 X509_verify_cert_error_string(vr));
    }
}

static void explain(CURL *c, CURLcode cc, const oidc_http_req *r, const char *host,
                    const char *cerr, bool too_big, char *why, size_t whylen)
{
    const char *detail = cerr && *cerr ? cerr : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
        snprintf(why, whylen,
                 "'%s' is not an https:// address; BIC talks to providers over "
                 "HTTPS only",
                 r->url);
        return;
    case CURLE_URL_MALFORMAT:
        snprintf(why, whylen, "'%s' is not a valid address", r->url);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        snprintf(why, whylen,
                 "the host name of %s could not be found in DNS; check the spelling of the "
                 "address and that this server can resolve it",
                 host);
        return;
    case CURLE_COULDNT_CONNECT:
        snprintf(why, whylen,
                 "could not connect to %s: nothing answered or the connection was refused; check "
                 "that the provider is running and that no firewall blocks this server",
                 host);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        snprintf(why, whylen, "%s did not answer within %.1f seconds", host,
                 (double)r->timeout_ms / 1000.0);
        return;
    case CURLE_PEER_FAILED_VERIFICATION:
        explain_certificate(c, host, detail, why, whylen);
        return;
    case CURLE_SSL_CONNECT_ERROR:
        snprintf(why, whylen, "the TLS handshake with %s failed (%s); is it an HTTPS server?", host,
                 detail);
        return;
    case CURLE_SSL_CACERT_BADFILE:
        snprintf(why, whylen,
                 "the provider's CA bundle could not be used; it must hold PEM certificates");
        return;
    case CURLE_WRITE_ERROR:
        if (too_big) {
            snprintf(why, whylen, "the answer from %s is larger than %zu bytes", host,
                     r->max_bytes);
            return;
        }
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        snprintf(why, whylen, "the connection to %s broke off (%s)", host, detail);
        return;
    default:
        break;
    }
    snprintf(why, whylen, "the request to %s failed: %s", host, detail);
}

int oidc_http(bic_arena *a, const oidc_http_req *r, oidc_http_answer *out, char *why, size_t whylen)
{
    struct sink s = {a, NULL, 0, 0, r->max_bytes, false};
    char cerr[CURL_ERROR_SIZE] = "";
    const char *host = host_of(a, r->url);
    *out = (oidc_http_answer){0};
    if (strncmp(r->url, "https://", 8)) {
        snprintf(why, whylen,
                 "'%s' is not an https:// address; BIC talks to providers over HTTPS only", r->url);
        return -1;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(why, whylen, "libcurl could not start a request");
        return -1;
    }
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    curl_easy_setopt(c, CURLOPT_URL, r->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bicd-oidc");
    if (r->ca_pem && *r->ca_pem) {
        struct curl_blob blob = {(void *)r->ca_pem, strlen(r->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (r->form) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->form);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(r->form));
    }
    if (r->basic_user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, r->basic_user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, r->basic_password ? r->basic_password : "");
    }
    CURLcode cc = curl_easy_perform(c);
    int rc = 0;
    if (cc != CURLE_OK) {
        explain(c, cc, r, host, cerr, s.too_big, why, whylen);
        rc = -1;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        out->body = s.buf ? s.buf : arena_strdup(a, "");
        out->len = s.len;
    }
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return rc;
}

int oidc_http_json(bic_arena *a, const oidc_http_req *r, const char *what, json_t **out, char *why,
                   size_t whylen)
{
    oidc_http_answer ans;
    *out = NULL;
    if (oidc_http(a, r, &ans, why, whylen) < 0) return -1;
    const char *host = host_of(a, r->url);
    if (ans.status >= 300 && ans.status < 400) {
        snprintf(why, whylen,
                 "%s at %s answered with a redirect (HTTP %ld), which BIC does not follow; "
                 "configure the final address",
                 what, r->url, ans.status);
        return -1;
    }
    if (ans.status == 404) {
        snprintf(why, whylen,
                 "%s answered HTTP 404 (not found) for %s; check the address (for the discovery "
                 "document: the issuer, to which /.well-known/openid-configuration is added)",
                 host, r->url);
        return -1;
    }
    if (ans.status != 200) {
        snprintf(why, whylen, "%s answered HTTP %ld for %s instead of %s", host, ans.status, r->url,
                 what);
        return -1;
    }
    json_t *j = json_loadb(ans.body, ans.len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(why, whylen, "the answer from %s is not %s: it is not a JSON object", r->url,
                 what);
        return -1;
    }
    *out = arena_defer(a, (void (*)(void *))json_decref, j);
    return 0;
}

/* ---- the cache ---- */

#define CACHE_SLOTS 32

struct cached {
    long long id;
    char stamp[40];
    time_t fetched, keys_fetched, used;
    char *authorization_endpoint, *token_endpoint, *jwks_uri, *jwks; /* malloc'd */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cached cache[CACHE_SLOTS];

static void slot_clear(struct cached *s)
{
    free(s->authorization_endpoint);
    free(s->token_endpoint);
    free(s->jwks_uri);
    free(s->jwks);
    *s = (struct cached){0};
}

/* With the lock held: the slot of id (any stamp), or NULL. */
static struct cached *slot_find(long long id)
{
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].id == id) return &cache[i];
    return NULL;
}

/* With the lock held: the slot of id, else a free one, else the least recently used. */
static struct cached *slot_take(long long id)
{
    struct cached *s = slot_find(id), *lru = &cache[0];
    if (s) return s;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].id == 0) return &cache[i];
        if (cache[i].used < lru->used) lru = &cache[i];
    }
    slot_clear(lru);
    return lru;
}

static int fetch_keys(bic_arena *a, const oidc_source *src, const char *jwks_uri, json_t **jwks,
                      char *why, size_t whylen)
{
    oidc_http_req r = {jwks_uri, src->ca_pem, src->timeout_ms, 512 * 1024, NULL, NULL, NULL};
    if (oidc_http_json(a, &r, "a key set (JWKS)", jwks, why, whylen) < 0) return -1;
    if (!json_is_array(json_object_get(*jwks, "keys"))) {
        snprintf(why, whylen, "the key set at %s has no \"keys\" list", jwks_uri);
        return -1;
    }
    return 0;
}

int oidc_meta_get(bic_arena *a, const oidc_source *src, bool refresh_keys, oidc_meta *out,
                  char *why, size_t whylen)
{
    time_t now = time(NULL);
    char *keys_text = NULL;
    bool fresh = false, keys_due = false;
    *out = (oidc_meta){0};
    pthread_mutex_lock(&cache_lock);
    struct cached *s = slot_find(src->id);
    if (s && !strcmp(s->stamp, src->stamp) && now - s->fetched < src->ttl) {
        fresh = true;
        s->used = now;
        out->authorization_endpoint = arena_strdup(a, s->authorization_endpoint);
        out->token_endpoint = arena_strdup(a, s->token_endpoint);
        out->jwks_uri = arena_strdup(a, s->jwks_uri);
        keys_text = arena_strdup(a, s->jwks);
        keys_due = refresh_keys && now - s->keys_fetched >= OIDC_JWKS_MIN_REFRESH;
        if (keys_due) s->keys_fetched = now; /* one refetch per interval, whoever asks */
    }
    pthread_mutex_unlock(&cache_lock);

    if (fresh && !keys_due) {
        out->jwks = json_loads(keys_text, 0, NULL);
        if (!out->jwks) {
            snprintf(why, whylen, "the cached key set does not parse");
            return -1;
        }
        arena_defer(a, (void (*)(void *))json_decref, out->jwks);
        return 0;
    }
    if (!fresh) {
        const char *slash =
            src->issuer[0] && src->issuer[strlen(src->issuer) - 1] == '/' ? "" : "/";
        oidc_http_req r = {
            arena_printf(a, "%s%s.well-known/openid-configuration", src->issuer, slash),
            src->ca_pem,
            src->timeout_ms,
            256 * 1024,
            NULL,
            NULL,
            NULL};
        json_t *doc;
        if (oidc_http_json(a, &r, "the discovery document", &doc, why, whylen) < 0) return -1;
        const char *problem = oidc_discovery_problem(a, doc, src->issuer);
        if (problem) {
            snprintf(why, whylen, "%s", problem);
            return -1;
        }
        out->authorization_endpoint =
            arena_strdup(a, json_string_value(json_object_get(doc, "authorization_endpoint")));
        out->token_endpoint =
            arena_strdup(a, json_string_value(json_object_get(doc, "token_endpoint")));
        out->jwks_uri = arena_strdup(a, json_string_value(json_object_get(doc, "jwks_uri")));
    }
    if (fetch_keys(a, src, out->jwks_uri, &out->jwks, why, whylen) < 0) return -1;
    char *text = json_dumps(out->jwks, JSON_COMPACT);
    if (!text) {
        snprintf(why, whylen, "cannot keep the key set");
        return -1;
    }
    pthread_mutex_lock(&cache_lock);
    s = slot_take(src->id);
    if (!fresh || strcmp(s->stamp, src->stamp)) {
        slot_clear(s);
        s->id = src->id;
        snprintf(s->stamp, sizeof(s->stamp), "%s", src->stamp);
        s->fetched = now;
        s->authorization_endpoint = strdup(out->authorization_endpoint);
        s->token_endpoint = strdup(out->token_endpoint);
        s->jwks_uri = strdup(out->jwks_uri);
    }
    free(s->jwks);
    s->jwks = text;
    s->keys_fetched = now;
    s->used = now;
    bool ok = s->authorization_endpoint && s->token_endpoint && s->jwks_uri;
    if (!ok) slot_clear(s);
    pthread_mutex_unlock(&cache_lock);
    return 0;
}
