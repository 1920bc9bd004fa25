/*
 * oidc.h - OpenID Connect pieces that need no database and no request: base64url, PKCE (S256),
 * RSA public keys from JWKs, ID token verification (RS256 only), sealing the client secret at
 * rest, the discovery document's checks (oidc.c); and the HTTPS client that talks to providers,
 * explains its failures in plain words and caches each provider's endpoints and key set
 * (oidc_http.c). fcgi/h_oidc.c does the database and the requests. Design: docs/oidc.md.
 */
#ifndef BIC_OIDC_H
#define BIC_OIDC_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "arena.h"

#define OIDC_MIN_RSA_BITS  2048      /* shorter keys are refused */
#define OIDC_MAX_RSA_BITS  16384     /* longer keys are refused (work bound) */
#define OIDC_TOKEN_MAX     16384     /* bytes: a longer ID token is refused unread */
#define OIDC_PKCE_LEN      43        /* base64url of a sha256, no padding */
#define OIDC_SECRET_MAX    512       /* bytes of a client secret */

/* ---- encodings ---- */

/*
 * Decodes n characters of base64url without padding (RFC 7515 section 2) into arena memory with
 * a NUL after the bytes. Refuses '=', characters outside the alphabet, a length of 1 mod 4 and
 * non-zero unused bits, so every value has one encoding. 0, or -1 when malformed.
 */
int oidc_b64url_decode(bic_arena *a, const char *in, size_t n, unsigned char **out, size_t *outlen);
/* n bytes as base64url without padding, in the arena. */
char *oidc_b64url_encode(bic_arena *a, const unsigned char *in, size_t n);
/* s with every byte but RFC 3986's unreserved characters as %XX, in the arena. */
char *oidc_url_encode(bic_arena *a, const char *s);

/* The PKCE S256 code challenge of verifier (RFC 7636 4.2): base64url(sha256(verifier)). */
void oidc_pkce_s256(const char *verifier, char out[OIDC_PKCE_LEN + 1]);

/* ---- keys ---- */

/*
 * The RSA public key of a JWK ({"kty": "RSA", "n", "e", ...}, RFC 7518 6.3.1), built with
 * OpenSSL 3's EVP_PKEY_fromdata. NULL with *why (a static sentence) when it is not an RSA key,
 * n or e is missing or not base64url, e is even, below 3 or longer than 8 bytes, or the modulus
 * is outside OIDC_MIN_RSA_BITS..OIDC_MAX_RSA_BITS. The caller frees the key (EVP_PKEY_free).
 */
EVP_PKEY *oidc_jwk_rsa(bic_arena *a, const json_t *jwk, const char **why);
/* Whether a JWK may verify RS256 signatures: kty "RSA", "use" absent or "sig", "alg" absent or
 * "RS256", "key_ops" absent or holding "verify". (Its n and e are checked by oidc_jwk_rsa.) */
bool oidc_jwk_for_rs256(const json_t *jwk);
/* How many keys of a JWKS document ({"keys": [...]}) are RS256 keys that oidc_jwk_rsa builds. */
size_t oidc_jwks_rs256_count(bic_arena *a, const json_t *jwks);

/* ---- the ID token ---- */

typedef enum {
    OIDC_TOKEN_OK,
    OIDC_TOKEN_MALFORMED,     /* not three base64url parts of JSON objects, or "crit" */
    OIDC_TOKEN_BAD_ALG,       /* alg is not RS256 (none, HS256, ES256, ...) */
    OIDC_TOKEN_UNKNOWN_KEY,   /* no RS256 key of the set has the header's kid */
    OIDC_TOKEN_BAD_SIGNATURE, /* the signature does not verify with that key */
    OIDC_TOKEN_BAD_ISSUER,    /* iss is not the configured issuer */
    OIDC_TOKEN_BAD_AUDIENCE,  /* aud does not hold the client id */
    OIDC_TOKEN_BAD_AZP,       /* azp is not the client id, or missing with several audiences */
    OIDC_TOKEN_EXPIRED,       /* exp is missing or more than skew seconds past */
    OIDC_TOKEN_NOT_YET,       /* iat or nbf more than skew seconds ahead */
    OIDC_TOKEN_TOO_OLD,       /* iat missing or older than max_age (plus skew) */
    OIDC_TOKEN_BAD_NONCE,     /* nonce missing or not the one this sign-in sent */
    OIDC_TOKEN_NO_SUBJECT,    /* sub missing, empty or longer than 255 bytes */
    OIDC_TOKEN__MAX
} oidc_token_status;

/* What the ID token must say. */
typedef struct {
    const char *issuer;    /* exactly the configured issuer */
    const char *client_id; /* must be in aud (and be azp when azp is there) */
    const char *nonce;     /* the nonce the authorization request carried */
    time_t now;
    long skew;    /* seconds of clock difference allowed either way */
    long max_age; /* seconds an ID token may have been issued before now */
} oidc_expect;

/*
 * Verifies a compact JWS ID token against the key set jwks and x, in this order: form, alg
 * (RS256 only, so "none" and an HS256 token "signed" with the public key are refused), the key
 * (by kid; without a kid only when the set holds exactly one RS256 key), the RSASSA-PKCS1-v1_5
 * SHA-256 signature, then the claims, which are never read before the signature verified.
 * *kid gets the header's kid (arena) or NULL whenever the header parsed, so a caller that gets
 * OIDC_TOKEN_UNKNOWN_KEY can fetch the key set again and retry. On OIDC_TOKEN_OK *claims gets
 * the payload (a new reference the caller releases); otherwise it is NULL.
 */
oidc_token_status oidc_id_token_verify(bic_arena *a, const char *token, const json_t *jwks,
                                       const oidc_expect *x, const char **kid, json_t **claims);
/* Stable name of a status ("bad_signature"), for audit rows and tests. */
const char *oidc_token_status_name(oidc_token_status s);

/* ---- discovery ---- */

/*
 * Checks a discovery document (OpenID Connect Discovery 1.0 section 3) against the configured
 * issuer: its issuer is exactly that one; authorization_endpoint, token_endpoint and jwks_uri
 * are https:// addresses; response_types_supported (when given) has "code";
 * code_challenge_methods_supported (when given) has "S256"; id_token_signing_alg_values_supported
 * (when given) has "RS256". NULL when usable, else one sentence in plain words (arena).
 */
const char *oidc_discovery_problem(bic_arena *a, const json_t *doc, const char *issuer);

/* ---- HTTPS to providers (oidc_http.c) ---- */

typedef struct {
    const char *url;
    const char *ca_pem; /* CA certificates (PEM) to trust; NULL or "": the system's */
    long timeout_ms;    /* connect and whole-transfer limit */
    size_t max_bytes;   /* a longer answer is refused */
    const char *form;   /* x-www-form-urlencoded body for a POST; NULL: GET */
    const char *basic_user, *basic_password; /* HTTP Basic (client_secret_basic), or NULL */
} oidc_http_req;

typedef struct {
    long status; /* the HTTP status */
    char *body;  /* in the arena, NUL-terminated */
    size_t len;
} oidc_http_answer;

/*
 * Sends r: https only, no redirects followed, the peer's certificate and host name verified.
 * 0 when an HTTP answer came (whatever its status); -1 when none did, with why saying in plain
 * words what went wrong: the name not found in DNS, nothing answering, a timeout, a certificate
 * that is not trusted (and why), a TLS failure, an answer over max_bytes, a bad address.
 */
int oidc_http(bic_arena *a, const oidc_http_req *r, oidc_http_answer *out, char *why,
              size_t whylen);

/*
 * oidc_http, then the answer must be HTTP 200 with a JSON object: *out gets it (released with
 * the arena). -1 with why (naming what, e.g. "the discovery document") otherwise: another
 * status (a redirect and 404 get their own hint) or a body that is not a JSON object.
 */
int oidc_http_json(bic_arena *a, const oidc_http_req *r, const char *what, json_t **out, char *why,
                   size_t whylen);

/* A provider as the cache sees it. */
typedef struct {
    long long id;
    const char *stamp; /* the row's updated_at: any change to the provider drops its cache */
    const char *issuer;
    const char *ca_pem;
    long timeout_ms;
    long ttl; /* seconds a fetched discovery document and key set are used */
} oidc_source;

/* A provider's endpoints and key set; the strings and jwks live as long as the arena. */
typedef struct {
    const char *authorization_endpoint, *token_endpoint, *jwks_uri;
    json_t *jwks;
} oidc_meta;

#define OIDC_JWKS_MIN_REFRESH 10 /* seconds between key-set fetches forced by unknown kids */

/*
 * The endpoints and key set of src: from the process-wide cache while younger than src->ttl
 * and fetched for the same stamp; otherwise fetched (discovery at
 * <issuer>/.well-known/openid-configuration, checked with oidc_discovery_problem, then jwks_uri)
 * and cached. refresh_keys fetches the key set again (a token named a key the cached set lacks),
 * at most once per OIDC_JWKS_MIN_REFRESH seconds per provider. Thread-safe; no lock is held
 * while fetching. 0, or -1 with why in plain words.
 */
int oidc_meta_get(bic_arena *a, const oidc_source *src, bool refresh_keys, oidc_meta *out,
                  char *why, size_t whylen);

#endif
