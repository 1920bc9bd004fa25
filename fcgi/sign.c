#include "sign.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "session.h"

static EVP_PKEY *key;
static char pub_b64[64];

static int adopt(EVP_PKEY *k)
{
    unsigned char raw[32];
    size_t n = sizeof(raw);
    if (!k || EVP_PKEY_id(k) != EVP_PKEY_ED25519 || EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 ||
        n != 32) {
        EVP_PKEY_free(k);
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)pub_b64, raw, 32);
    EVP_PKEY_free(key);
    key = k;
    return 0;
}

int sign_init(const bic_config *cfg)
{
    FILE *f = fopen(cfg->auth_sign_key_file, "r");
    if (!f) {
        LOG_ERROR(NULL, "cannot read the signing key %s: %s", cfg->auth_sign_key_file,
                  strerror(errno));
        return -1;
    }
    EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (adopt(k) < 0) {
        LOG_ERROR(NULL, "%s is not an Ed25519 private key", cfg->auth_sign_key_file);
        return -1;
    }
    return 0;
}

int sign_init_pem(const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return adopt(k);
}

const char *sign_public_b64(void)
{
    return key ? pub_b64 : NULL;
}

int sign_b64(const void *data, size_t len, char out[89])
{
    if (!key) return -1;
    unsigned char sig[64];
    size_t n = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
             EVP_DigestSign(ctx, sig, &n, data, len) == 1 && n == 64;
    EVP_MD_CTX_free(ctx);
    if (!ok) return -1;
    EVP_EncodeBlock((unsigned char *)out, sig, 64);
    return 0;
}

char *sign_task_envelope(long long task_id, long long server_id, const char *type, json_t *params,
                         char sig_header[128])
{
    char nonce[RANDOM_TOKEN_LEN + 1], sig[89];
    if (random_token(nonce) < 0) {
        json_decref(params);
        return NULL;
    }
    json_t *body = json_pack("{s:I, s:I, s:s, s:o, s:I, s:s}", "task_id", (json_int_t)task_id,
                             "server_id", (json_int_t)server_id, "type", type, "params",
                             params ? params : json_object(), "issued_at",
                             (json_int_t)time(NULL), "nonce", nonce);
    char *txt = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!txt || sign_b64(txt, strlen(txt), sig) < 0) {
        free(txt);
        return NULL;
    }
    snprintf(sig_header, 128, "X-BIC-Signature: %s", sig);
    return txt;
}
