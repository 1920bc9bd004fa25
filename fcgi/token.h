/*
 * token.h - session access tokens: JWT, HS256 only, made and checked with libjwt.
 *
 * libjwt 1.10 verifies the signature but not the claims, and would accept
 * other algorithms; token_verify() therefore checks the algorithm after
 * decoding and checks exp, nbf, iss and aud itself.
 */
#ifndef BIC_TOKEN_H
#define BIC_TOKEN_H

#include <stddef.h>
#include <time.h>

#include "config.h"

#define TOKEN_MAX_LEN 2048

typedef struct {
    long long user_id;    /* sub */
    long long session_id; /* sid */
    time_t exp;
} bic_token_claims;

typedef enum {
    TOKEN_OK,
    TOKEN_MALFORMED, /* not a JWT, too long, bad signature */
    TOKEN_BAD_ALG,   /* anything but HS256 */
    TOKEN_EXPIRED,   /* now >= exp */
    TOKEN_NOT_YET,   /* now < nbf */
    TOKEN_BAD_ISSUER,
    TOKEN_BAD_AUDIENCE,
    TOKEN_BAD_CLAIMS, /* sub or sid missing or not positive */
} bic_token_status;

/* Loads the signing key (at least 32 bytes) from cfg->auth_secret_file. 0 or -1. */
int token_init(const bic_config *cfg);
/* Uses key directly (tests). 0 or -1 when shorter than 32 bytes. */
int token_init_key(const unsigned char *key, size_t len, const char *issuer, const char *audience);

/* Returns a malloc'd token for the claims, valid from now for ttl seconds; NULL on failure. */
char *token_issue(long long user_id, long long session_id, long ttl, time_t now);

/* Verifies token at time now; fills *out on TOKEN_OK. */
bic_token_status token_verify(const char *token, time_t now, bic_token_claims *out);

const char *token_status_name(bic_token_status s);

#endif
