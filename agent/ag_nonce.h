/*
 * ag_nonce.h - the nonces of accepted tasks, remembered for a window (10 min).
 *
 * Only requests that already passed the signature, server and time checks are
 * recorded, so the cache grows with what CCC signs, not with what anyone sends;
 * it still has a hard cap and refuses (fails closed) when that is reached.
 * Thread-safe.
 */
#ifndef BIC_AG_NONCE_H
#define BIC_AG_NONCE_H

#include <stddef.h>

#define AG_NONCE_WINDOW_S 600
#define AG_NONCE_MAX      65536

typedef struct ag_nonces ag_nonces;

/* A new cache that forgets a nonce window_s seconds after it was seen. NULL on OOM. */
ag_nonces *ag_nonces_new(long long window_s, size_t max_entries);
void ag_nonces_free(ag_nonces *n);

enum ag_nonce_result { AG_NONCE_NEW, AG_NONCE_SEEN, AG_NONCE_FULL };

/*
 * Records nonce as seen at now (seconds) unless it was seen in the window before.
 * AG_NONCE_SEEN: a replay; AG_NONCE_FULL: max_entries unexpired nonces (or OOM).
 */
enum ag_nonce_result ag_nonces_add(ag_nonces *n, const char *nonce, long long now);

/* Number of remembered (not yet pruned) nonces. */
size_t ag_nonces_count(ag_nonces *n);

#endif
