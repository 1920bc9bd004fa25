/*
 * totp.h - the second factor's primitives: RFC 4226 HOTP and RFC 6238 TOTP codes, base32
 * (RFC 4648), the sealed form of a secret at rest (AES-256-GCM), otpauth:// URIs, their QR
 * code as SVG (libqrencode) and one-time recovery codes.
 *
 * Nothing here touches the database or a request: fcgi/h_mfa.c does that. bicd uses
 * HMAC-SHA1, 6 digits, 30-second steps and a window of one step either side, the values
 * every authenticator app assumes; SHA-256/512 and 8 digits exist for the RFC's test vectors.
 */
#ifndef BIC_TOTP_H
#define BIC_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "arena.h"

#define TOTP_SECRET_LEN   20 /* bytes: 160 bits, RFC 4226's recommendation */
#define TOTP_B32_LEN      32 /* base32 characters of a secret (no padding) */
#define TOTP_DIGITS       6
#define TOTP_PERIOD       30 /* seconds per step */
#define TOTP_WINDOW       1  /* steps accepted either side of now */
#define RECOVERY_CODE_LEN 16 /* characters without the dashes */
#define RECOVERY_CODES    10 /* codes per set */
/* a sealed secret: nonce, ciphertext, tag */
#define TOTP_SEALED_LEN (12 + TOTP_SECRET_LEN + 16)

typedef enum { TOTP_SHA1, TOTP_SHA256, TOTP_SHA512 } totp_alg;

/*
 * Writes the HOTP value of counter (RFC 4226: HMAC, dynamic truncation, modulo 10^digits)
 * as digits decimal characters and a NUL into out. digits is 6..8. 0, or -1 when digits is
 * out of range or the HMAC fails.
 */
int totp_hotp(const unsigned char *key, size_t keylen, totp_alg alg, uint64_t counter, int digits,
              char *out);

/* The 30-second step of a time: floor(now / TOTP_PERIOD); 0 before the epoch. */
int64_t totp_step(time_t now);

typedef enum {
    TOTP_MATCH,    /* the code of a step in the window, later than last_step */
    TOTP_REPLAYED, /* the code of a step in the window that is not later than last_step */
    TOTP_NO_MATCH, /* no step in the window has this code */
} totp_result;

/*
 * Checks a 6-digit code against the SHA-1 TOTP of secret at now, one step either side.
 * last_step is the step of the last accepted code (0: none): a code of that step or an
 * earlier one is TOTP_REPLAYED, so no code is ever accepted twice. On TOTP_MATCH *step is
 * the matched step, which the caller must store as the new last_step. Codes are compared
 * in constant time. code must already be 6 digits (totp_code_normalize).
 */
totp_result totp_check(const unsigned char secret[TOTP_SECRET_LEN], const char *code, time_t now,
                       int64_t last_step, int64_t *step);

/*
 * Copies a code as a person may type it ("123 456", "123-456") into out as 6 digits and a
 * NUL. false when it is not 6 digits once spaces and dashes are dropped.
 */
bool totp_code_normalize(const char *in, char out[TOTP_DIGITS + 1]);

/*
 * Base32 (RFC 4648 alphabet, upper case, no padding) of n bytes into out, which must hold
 * (n * 8 + 4) / 5 + 1 characters. Returns the characters written, or 0 when out is too small.
 */
size_t base32_encode(const unsigned char *in, size_t n, char *out, size_t outlen);

/*
 * Decodes base32 (either case; '=' padding, spaces and dashes ignored) into out. Returns the
 * bytes written, or -1 on a character outside the alphabet, non-zero trailing bits, a
 * length no encoder makes, or more than outlen bytes.
 */
long base32_decode(const char *in, unsigned char *out, size_t outlen);

/* Fills secret with random bytes. 0 or -1. */
int totp_secret_new(unsigned char secret[TOTP_SECRET_LEN]);

/*
 * The otpauth://totp/ URI an authenticator app reads (Key Uri Format): label
 * "<issuer>:<account>", secret in base32, issuer, SHA1, 6 digits, 30 s; issuer and account
 * percent-encoded. In the arena.
 */
char *totp_uri(bic_arena *a, const char *issuer, const char *account,
               const unsigned char secret[TOTP_SECRET_LEN]);

/*
 * The QR code (error correction M, 8-bit mode) of text as a standalone SVG document: one
 * path of dark modules, a white background and a four-module quiet zone. In the arena, or
 * NULL when libqrencode fails (text too long for any version).
 */
char *totp_qr_svg(bic_arena *a, const char *text);

/*
 * A new recovery code for display: RECOVERY_CODE_LEN characters from an alphabet without
 * look-alikes (no 0, 1, i, l, o), about 79 random bits, in groups of four joined by
 * dashes ("abcd-efgh-jkmn-pqrs"), NUL-terminated. 0 or -1.
 */
int totp_recovery_new(char out[RECOVERY_CODE_LEN + RECOVERY_CODE_LEN / 4]);

/*
 * The canonical form of a recovery code as typed (dashes and spaces dropped, lower case):
 * the string that is hashed and stored. false when it is not RECOVERY_CODE_LEN characters
 * of the alphabet.
 */
bool totp_recovery_normalize(const char *in, char out[RECOVERY_CODE_LEN + 1]);

#endif
