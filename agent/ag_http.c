#include "ag_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ag_util.h"
#include "version.h"

struct ag_http {
    CURL *curl;
    char *base, *ca;
    const atomic_int *abort;
};

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    const atomic_int *abort = user;
    return abort && atomic_load(abort) ? 1 : 0;
}

struct buf {
    char *data;
    size_t len, cap;
    int overflow;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct buf *b = user;
    size_t n = size * nmemb;
    if (b->len + n > AG_HTTP_ANSWER_MAX) {
        b->overflow = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

ag_http *ag_http_new(const char *base_url, const char *ca_file, const atomic_int *abort)
{
    ag_http *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->abort = abort;
    h->curl = curl_easy_init();
    h->base = strdup(base_url);
    h->ca = strdup(ca_file ? ca_file : "");
    if (!h->curl || !h->base || !h->ca) {
        ag_http_free(h);
        return NULL;
    }
    return h;
}

void ag_http_free(ag_http *h)
{
    if (!h) return;
    if (h->curl) curl_easy_cleanup(h->curl);
    free(h->base);
    free(h->ca);
    free(h);
}

/*
 * The request headers: each line of extra (NULL-terminated, may be NULL), then
 * "Authorization: Bearer <bearer>" when bearer is not NULL. NULL when out of memory.
 */
static struct curl_slist *headers_new(const char *const *extra, const char *bearer)
{
    struct curl_slist *hdr = NULL, *l;
    for (size_t i = 0; extra && extra[i]; i++) {
        if (!(l = curl_slist_append(hdr, extra[i]))) goto oom;
        hdr = l;
    }
    if (bearer) {
        char auth[512];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        l = curl_slist_append(hdr, auth);
        explicit_bzero(auth, sizeof(auth));
        if (!l) goto oom;
        hdr = l;
    }
    return hdr;
oom:
    curl_slist_free_all(hdr);
    return NULL;
}

/* Sets what every request shares: URL, TLS checks, user agent, headers, abort. */
static void prepare(ag_http *h, const char *url, struct curl_slist *hdr, char *cerr)
{
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (*h->ca) curl_easy_setopt(c, CURLOPT_CAINFO, h->ca);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bic-agent/" BIC_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (h->abort) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)h->abort);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
}

/* After a transfer: wipes the header list (it holds the credential) and lets go of it. */
static void finish(ag_http *h, struct curl_slist *hdr)
{
    for (struct curl_slist *l = hdr; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(hdr);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, NULL);
}

/* err = "<what>: HTTP <status>[: <code>: <message>]" from a JSON error answer. */
static void status_error(const char *what, long status, const struct buf *b, char *err,
                         size_t errlen)
{
    AG_AUTOJSON json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!code) code = json_string_value(e);
    snprintf(err, errlen, "%s: HTTP %ld%s%.64s%s%.200s", what, status, code ? ": " : "",
             code ? code : "", msg ? ": " : "", msg ? msg : "");
}

int ag_http_post(ag_http *h, const char *path, const char *bearer, const json_t *body,
                 json_t **answer, char *err, size_t errlen)
{
    if (answer) *answer = NULL;
    static const char *const json_headers[] = {"Content-Type: application/json",
                                               "Accept: application/json", NULL};
    AG_AUTOFREE char *json = json_dumps(body, JSON_COMPACT);
    AG_AUTOFREE char *url = NULL;
    struct curl_slist *hdr = NULL;
    if (!json || asprintf(&url, "%s%s", h->base, path) < 0 ||
        !(hdr = headers_new(json_headers, bearer))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct buf b = {0};
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *c = h->curl;
    prepare(h, url, hdr, cerr);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    finish(h, hdr);
    int status = -1;
    if (rc != CURLE_OK) {
        if (b.overflow)
            snprintf(err, errlen, "POST %s: answer over %d bytes", path, AG_HTTP_ANSWER_MAX);
        else
            snprintf(err, errlen, "POST %s: %s", path, *cerr ? cerr : curl_easy_strerror(rc));
    } else {
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        status = (int)code;
        if (answer && b.len) *answer = json_loadb(b.data, b.len, 0, NULL);
    }
    free(b.data);
    return status;
}

struct get_ctx {
    CURL *curl;
    long status; /* known once the first body byte arrives */
    ag_http_sink sink;
    void *arg;
    int sink_ended;
    struct buf other; /* the body of any status but 200 */
};

static size_t on_get_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct get_ctx *g = user;
    if (!g->status) curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &g->status);
    if (g->status != 200) return on_data(ptr, size, nmemb, &g->other);
    if (g->sink(g->arg, ptr, size * nmemb) < 0) {
        g->sink_ended = 1;
        return 0;
    }
    return size * nmemb;
}

/* The options of a long transfer: no overall limit, but no stall longer than AG_HTTP_STALL_S. */
static void long_transfer(CURL *c)
{
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 0L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)AG_HTTP_STALL_S);
}

int ag_http_get_stream(ag_http *h, const char *path, const char *bearer, ag_http_sink sink,
                       void *arg, char *err, size_t errlen)
{
    AG_AUTOFREE char *url = NULL;
    struct curl_slist *hdr = NULL;
    if (asprintf(&url, "%s%s", h->base, path) < 0 || !(hdr = headers_new(NULL, bearer))) {
        url = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct get_ctx g = {.curl = h->curl, .sink = sink, .arg = arg};
    char cerr[CURL_ERROR_SIZE] = "";
    prepare(h, url, hdr, cerr);
    long_transfer(h->curl);
    curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_get_data);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &g);
    CURLcode rc = curl_easy_perform(h->curl);
    finish(h, hdr);
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    char what[300];
    snprintf(what, sizeof(what), "GET %.280s", path);
    int ret = -1;
    if (g.sink_ended)
        snprintf(err, errlen, "%s: aborted", what);
    else if (status && status != 200)
        status_error(what, status, &g.other, err, errlen), ret = (int)status;
    else if (rc != CURLE_OK)
        snprintf(err, errlen, "%s: %s", what, *cerr ? cerr : curl_easy_strerror(rc));
    else
        ret = (int)status;
    free(g.other.data);
    return ret;
}

static size_t on_read_fd(char *buf, size_t size, size_t nitems, void *user)
{
    int fd = *(const int *)user;
    ssize_t n;
    do
        n = read(fd, buf, size * nitems);
    while (n < 0 && errno == EINTR);
    return n < 0 ? CURL_READFUNC_ABORT : (size_t)n;
}

int ag_http_put_fd(ag_http *h, const char *path, const char *bearer, int fd, long long len,
                   const char *const *headers, char *err, size_t errlen)
{
    const char *lines[16] = {"Content-Type: application/octet-stream", "Accept: application/json"};
    size_t n = 2;
    for (size_t i = 0; headers && headers[i] && n < AG_NELEM(lines) - 1; i++)
        lines[n++] = headers[i];
    AG_AUTOFREE char *url = NULL;
    struct curl_slist *hdr = NULL;
    if (asprintf(&url, "%s%s", h->base, path) < 0 || !(hdr = headers_new(lines, bearer))) {
        url = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct buf b = {0};
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *c = h->curl;
    prepare(h, url, hdr, cerr);
    long_transfer(c);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read_fd);
    curl_easy_setopt(c, CURLOPT_READDATA, &fd);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    finish(h, hdr);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    char what[300];
    snprintf(what, sizeof(what), "PUT %.280s", path);
    int ret = -1;
    if (rc != CURLE_OK && !(status >= 300))
        snprintf(err, errlen, "%s: %s", what, *cerr ? cerr : curl_easy_strerror(rc));
    else if (status < 200 || status >= 300)
        status_error(what, status, &b, err, errlen), ret = (int)status;
    else
        ret = (int)status;
    free(b.data);
    return ret;
}
