/*
 * ag_sig.h - Ed25519 verification of CCC's signatures (OpenSSL).
 */
#ifndef BIC_AG_SIG_H
#define BIC_AG_SIG_H

#include <stddef.h>

#define AG_SIG_KEY_LEN 32 /* raw Ed25519 public key */
#define AG_SIG_LEN     64 /* Ed25519 signature */

/*
 * True (1) when sig_b64 (standard base64 of the 64-byte signature) is key's
 * Ed25519 signature of exactly body[0..len). 0 for anything else: bad base64,
 * wrong length, wrong key, other bytes.
 */
int ag_sig_verify(const unsigned char key[AG_SIG_KEY_LEN], const void *body, size_t len,
                  const char *sig_b64);

/* Decodes base64 of a raw 32-byte public key into key. Returns 0 or -1. */
int ag_sig_key_decode(const char *b64, unsigned char key[AG_SIG_KEY_LEN]);

#endif
