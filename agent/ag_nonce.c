#include "ag_nonce.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    char *nonce;
    long long seen;
};

struct ag_nonces {
    pthread_mutex_t lock;
    long long window;
    size_t max, n, cap;
    struct entry *e;
};

ag_nonces *ag_nonces_new(long long window_s, size_t max_entries)
{
    ag_nonces *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    pthread_mutex_init(&n->lock, NULL);
    n->window = window_s;
    n->max = max_entries;
    return n;
}

void ag_nonces_free(ag_nonces *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++)
        free(n->e[i].nonce);
    free(n->e);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

/* Drops entries older than the window; order is not kept. Called with the lock held. */
static void prune(ag_nonces *n, long long now)
{
    for (size_t i = 0; i < n->n;) {
        if (now - n->e[i].seen >= n->window || n->e[i].seen > now + n->window) {
            free(n->e[i].nonce);
            n->e[i] = n->e[--n->n];
        } else {
            i++;
        }
    }
}

enum ag_nonce_result ag_nonces_add(ag_nonces *n, const char *nonce, long long now)
{
    enum ag_nonce_result r = AG_NONCE_FULL;
    pthread_mutex_lock(&n->lock);
    prune(n, now);
    for (size_t i = 0; i < n->n; i++)
        if (!strcmp(n->e[i].nonce, nonce)) {
            r = AG_NONCE_SEEN;
            goto out;
        }
    if (n->n == n->max) goto out;
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 64;
        struct entry *e = realloc(n->e, cap * sizeof(*e));
        if (!e) goto out;
        n->e = e;
        n->cap = cap;
    }
    char *copy = strdup(nonce);
    if (!copy) goto out;
    n->e[n->n++] = (struct entry){copy, now};
    r = AG_NONCE_NEW;
out:
    pthread_mutex_unlock(&n->lock);
    return r;
}

size_t ag_nonces_count(ag_nonces *n)
{
    pthread_mutex_lock(&n->lock);
    size_t c = n->n;
    pthread_mutex_unlock(&n->lock);
    return c;
}
