/*
 * seal.c - secrets at rest (see seal.h).
 */
#include "seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "arena.h"

static const char *const labels[SEAL__MAX] = {
#define X(name, label) label,
    SEAL_PURPOSES(X)
#undef X
};

int seal_derive(const unsigned char *master, size_t n, seal_purpose purpose,
                unsigned char key[SEAL_KEY_LEN])
{
    unsigned int len = 0;
    if (!master || n < 32 || (unsigned)purpose >= SEAL__MAX) return -1;
    const char *info = labels[purpose];
    if (!HMAC(EVP_sha256(), master, (int)n, (const unsigned char *)info, strlen(info), key, &len) ||
        len != SEAL_KEY_LEN)
        return -1;
    return 0;
}

int seal_encrypt(const unsigned char key[SEAL_KEY_LEN], const char *aad, const unsigned char *in,
                 size_t n, unsigned char *out)
{
    int ok, len = 0, fin = 0;
    if (n > SEAL_MAX || RAND_bytes(out, 12) != 1) return -1;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return -1;
    ok = EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) == 1 &&
         EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
         EVP_EncryptUpdate(ctx, out + 12, &len, in, (int)n) == 1 && (size_t)len == n &&
         EVP_EncryptFinal_ex(ctx, out + 12 + len, &fin) == 1 && fin == 0 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 12 + n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

int seal_decrypt(const unsigned char key[SEAL_KEY_LEN], const char *aad, const unsigned char *in,
                 size_t n, unsigned char *out)
{
    int ok, len = 0, fin = 0;
    if (!in || n < SEAL_OVERHEAD || n - SEAL_OVERHEAD > SEAL_MAX) return -1;
    size_t m = n - SEAL_OVERHEAD;
    unsigned char tag[16];
    memcpy(tag, in + 12 + m, sizeof(tag));
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return -1;
    ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)aad, (int)strlen(aad)) == 1 &&
         EVP_DecryptUpdate(ctx, out, &len, in + 12, (int)m) == 1 && (size_t)len == m &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx, out + len, &fin) == 1;
    EVP_CIPHER_CTX_free(ctx);
    if (!ok) {
        OPENSSL_cleanse(out, m);
        return -1;
    }
    out[m] = '\0';
    return 0;
}

/* ---- the keys of this process ---- */

static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char keys[SEAL__MAX][SEAL_KEY_LEN];
static bool ready[SEAL__MAX];

bic_err seal_key(bic_req *req, seal_purpose purpose, const unsigned char **out)
{
    if ((unsigned)purpose >= SEAL__MAX) return fail(req, BIC_E_INTERNAL, "unknown seal purpose");
    pthread_mutex_lock(&key_lock);
    if (!ready[purpose]) {
        unsigned char master[256];
        size_t n = 0;
        FILE *f = fopen(req->cfg->auth_secret_file, "rb");
        if (f) {
            n = fread(master, 1, sizeof(master), f);
            fclose(f);
        }
        if (f && seal_derive(master, n, purpose, keys[purpose]) == 0) ready[purpose] = true;
        OPENSSL_cleanse(master, sizeof(master));
    }
    bool ok = ready[purpose];
    pthread_mutex_unlock(&key_lock);
    if (!ok)
        return fail(req, BIC_E_UNAVAILABLE, "cannot derive the key '%s' from %s", labels[purpose],
                    req->cfg->auth_secret_file);
    *out = keys[purpose];
    return BIC_E_OK;
}

bic_err seal_value(bic_req *req, seal_purpose purpose, const char *aad, const void *in, size_t n,
                   unsigned char **out, size_t *out_len)
{
    const unsigned char *key;
    bic_err e = seal_key(req, purpose, &key);
    if (e != BIC_E_OK) return e;
    unsigned char *buf = arena_alloc(req->arena, n + SEAL_OVERHEAD);
    if (seal_encrypt(key, aad, in, n, buf) < 0)
        return fail(req, BIC_E_INTERNAL, "cannot seal a secret of %s", aad);
    *out = buf;
    *out_len = n + SEAL_OVERHEAD;
    return BIC_E_OK;
}
