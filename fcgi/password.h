/*
 * password.h - argon2id password hashing with a bound on concurrent hashes.
 *
 * Each hash holds argon2_memory_kib of memory for tens of milliseconds, so at
 * most max_concurrent_hashes (default: the number of online cores) run at once;
 * callers beyond that wait in line (up to 10 s, then BIC_E_UNAVAILABLE) rather
 * than letting a login storm exhaust memory.
 */
#ifndef BIC_PASSWORD_H
#define BIC_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "errors.h"

#define PASSWORD_MIN_LEN  12
#define PASSWORD_MAX_LEN  256 /* bytes; bounds hashing work per request */
#define PASSWORD_HASH_LEN 160 /* encoded string, with room */

/* Sets cost parameters and the concurrency bound from cfg; call once at start. */
#define PASSWORD_SALT_MAX  64
#define PASSWORD_OUT_MIN   16 /* bicd writes 32; a shorter stored hash is a damaged one */
#define PASSWORD_OUT_MAX   64
#define PASSWORD_M_KIB_MAX (1u << 21) /* 2 GiB: the most work a stored hash may ask for */
#define PASSWORD_T_MAX     64
#define PASSWORD_P_MAX     16

/* The parameters, salt and hash of an encoded argon2id hash (PHC string format). */
struct password_params {
    uint32_t version, m_kib, t, p;
    unsigned char salt[PASSWORD_SALT_MAX], hash[PASSWORD_OUT_MAX];
    size_t salt_len, hash_len;
};

/* $argon2id$v=19$m=M,t=T,p=P$<salt>$<hash> into out (cap bytes); its length, -1 if too long */
int password_encode(uint32_t m_kib, uint32_t t, uint32_t p, const unsigned char *salt,
                    size_t salt_len, const unsigned char *hash, size_t hash_len, char *out,
                    size_t cap);
/* 0 and h filled when enc is such a string with sane parameters, else -1 */
int password_decode(const char *enc, struct password_params *h);

void password_init(const bic_config *cfg);

/* Hashes pw into out (encoded $argon2id$...). BIC_E_OK, or BIC_E_UNAVAILABLE/INTERNAL. */
bic_err password_hash(const char *pw, char out[PASSWORD_HASH_LEN]);

/*
 * Verifies pw against encoded. When encoded is NULL (unknown user) a hash of
 * the same cost is still computed, so both cases take the same time. Sets
 * *ok. Returns BIC_E_OK or BIC_E_UNAVAILABLE when the hash queue is full.
 */
bic_err password_verify(const char *pw, const char *encoded, bool *ok);

/* Checks length and content rules; writes a client-safe reason to msg. */
bool password_acceptable(const char *pw, char *msg, size_t msglen);

/* The concurrency bound in force (for tests and metrics). */
int password_max_concurrent(void);

#endif
