/*
 * seal.h - secrets at rest: AES-256-GCM under keys derived from [auth] secret_file.
 *
 * A TOTP secret, an OIDC client secret, a directory's bind password, a BMC password: each
 * kind has its own key, HMAC-SHA256(master, label) with the label of its purpose, and every
 * sealed value is bound to its owner by the aad (e.g. "user:42"), so a sealed value copied
 * to another row does not open. Sealed form: nonce (12) || ciphertext (n) || tag (16).
 */
#ifndef BIC_SEAL_H
#define BIC_SEAL_H

#include <stddef.h>

#include "http.h"

#define SEAL_KEY_LEN  32
#define SEAL_OVERHEAD (12 + 16)
#define SEAL_MAX      4096 /* bytes of a secret */

/* purpose, the label its key is derived with (never change one: sealed rows would not open) */
#define SEAL_PURPOSES(X)                                                                           \
    X(TOTP, "bic totp secret key v1")                                                              \
    X(OIDC, "bic oidc client secret key v1")                                                       \
    X(DIRECTORY, "bic directory bind password key v1")                                             \
    X(BMC, "bic bmc password key v1")

typedef enum {
#define X(name, label) SEAL_##name,
    SEAL_PURPOSES(X)
#undef X
        SEAL__MAX
} seal_purpose;

/* The key of purpose: HMAC-SHA256(master, its label). 0, or -1 when master is shorter than
 * 32 bytes or purpose is unknown. */
int seal_derive(const unsigned char *master, size_t n, seal_purpose purpose,
                unsigned char key[SEAL_KEY_LEN]);

/* Seals n bytes (at most SEAL_MAX) bound to aad into out (n + SEAL_OVERHEAD bytes) with a
 * fresh random nonce. 0 or -1. */
int seal_encrypt(const unsigned char key[SEAL_KEY_LEN], const char *aad, const unsigned char *in,
                 size_t n, unsigned char *out);

/* Opens seal_encrypt's output of n bytes into out: n - SEAL_OVERHEAD bytes, then a NUL (out
 * has room for n - SEAL_OVERHEAD + 1). 0, or -1 when the key, the aad or a byte differs (out
 * is wiped then). */
int seal_decrypt(const unsigned char key[SEAL_KEY_LEN], const char *aad, const unsigned char *in,
                 size_t n, unsigned char *out);

/* The key of purpose for this process, derived once from req->cfg->auth_secret_file;
 * BIC_E_UNAVAILABLE (answered) when that file cannot be read. */
bic_err seal_key(bic_req *req, seal_purpose purpose, const unsigned char **out);

/* seal_key + seal_encrypt into the arena: *out gets n + SEAL_OVERHEAD bytes. */
bic_err seal_value(bic_req *req, seal_purpose purpose, const char *aad, const void *in, size_t n,
                   unsigned char **out, size_t *out_len);

/* seal_key + seal_encrypt into the arena: *out gets n + SEAL_OVERHEAD bytes. Answers errors. */
bic_err seal_value(bic_req *req, seal_purpose purpose, const char *aad, const void *in, size_t n,
                   unsigned char **out, size_t *out_len);

#endif
