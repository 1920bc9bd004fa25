#include "ag_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int ag_http_post(ag_http *h, const char *path, const char *bearer, const json_t *body,
                 json_t **answer, char *err, size_t errlen)
{
    if (answer) *answer = NULL;
    AG_AUTOFREE char *json = json_dumps(body, JSON_COMPACT);
    AG_AUTOFREE char *url = NULL;
    if (!json || asprintf(&url, "%s%s", h->base, path) < 0) {
        url = NULL;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct curl_slist *hdr = NULL, *l;
    char auth[512];
    l = curl_slist_append(hdr, "Content-Type: application/json");
    if (l) hdr = l;
    l = curl_slist_append(hdr, "Accept: application/json");
    if (l) hdr = l;
    if (bearer) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);
        l = curl_slist_append(hdr, auth);
        memset(auth, 0, sizeof(auth));
        if (!l) {
            curl_slist_free_all(hdr);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        hdr = l;
    }
    struct buf b = {0};
    char cerr[CURL_ERROR_SIZE] = "";
    CURL *c = h->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (*h->ca) curl_easy_setopt(c, CURLOPT_CAINFO, h->ca);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "bic-agent/" BIC_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(json));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (h->abort) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)h->abort);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    /* the header list holds the credential */
    for (l = hdr; l; l = l->next)
        memset(l->data, 0, strlen(l->data));
    curl_slist_free_all(hdr);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
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
