#include "ag_sig.h"

#include <openssl/evp.h>
#include <string.h>

#include "ag_util.h"

int ag_sig_verify(const unsigned char key[AG_SIG_KEY_LEN], const void *body, size_t len,
                  const char *sig_b64)
{
    if (!sig_b64) return 0;
    unsigned char sig[AG_SIG_LEN + 1];
    if (strlen(sig_b64) > 4 * ((AG_SIG_LEN + 2) / 3)) return 0;
    if (ag_b64_decode(sig_b64, sig, sizeof(sig)) != AG_SIG_LEN) return 0;
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, AG_SIG_KEY_LEN);
    if (!pkey) return 0;
    int ok = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    /* Ed25519 hashes internally: no digest, and one-shot EVP_DigestVerify only */
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) == 1)
        ok = EVP_DigestVerify(ctx, sig, AG_SIG_LEN, body, len) == 1;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return ok;
}

int ag_sig_key_decode(const char *b64, unsigned char key[AG_SIG_KEY_LEN])
{
    unsigned char buf[AG_SIG_KEY_LEN + 1];
    if (!b64 || strlen(b64) != 44) return -1;
    ssize_t n = ag_b64_decode(b64, buf, sizeof(buf));
    if (n != AG_SIG_KEY_LEN) return -1;
    memcpy(key, buf, AG_SIG_KEY_LEN);
    return 0;
}
