/*
 * session.h - who is calling: session cookies, CSRF and session lifecycle.
 *
 * A sign-in creates a sessions row and two HttpOnly, Secure, SameSite=Strict
 * __Host- cookies: a short-lived access token (JWT naming the row) and a
 * refresh token (random; only its sha256 is stored). Every request checks the
 * row is live, so logout, password change and disabling a user act at once.
 * State-changing requests need a matching Origin and an X-CSRF-Token header:
 * the session's token when signed in, otherwise the pre-session token from the
 * __Host-bic_csrf cookie (double submit) or, for refresh, the token of the
 * session named by the refresh cookie.
 */
#ifndef BIC_SESSION_H
#define BIC_SESSION_H

#include "http.h"

#define COOKIE_SESSION   "__Host-bic_session"
#define COOKIE_REFRESH   "__Host-bic_refresh"
#define COOKIE_CSRF      "__Host-bic_csrf"
#define RANDOM_TOKEN_LEN 43 /* 32 random bytes, base64url without padding */

/*
 * Fills req->who from the session cookie. A missing, expired or revoked
 * session leaves the caller anonymous (the route's role check then answers
 * 401). Returns an error only when the database cannot be asked.
 */
bic_err session_identify(bic_req *req, bic_resp *resp);

/*
 * Whether the Origin header names this site: one of [server] public_origin, or else
 * https:// and the host and port the request came to.
 */
bool session_origin_allowed(bic_req *req);

/* For state-changing requests: Origin must be ours and the CSRF header must match. */
bic_err session_check_csrf(bic_req *req);

/* Writes 32 random bytes as base64url (RANDOM_TOKEN_LEN chars + NUL) into out. 0 or -1. */
int random_token(char out[RANDOM_TOKEN_LEN + 1]);
/* sha256 of s into out. */
void sha256_bytes(const char *s, unsigned char out[32]);

/*
 * Creates a session for user (in the caller's transaction), sets both cookies
 * and returns the CSRF token (arena) in *csrf_out.
 */
bic_err session_create(bic_req *req, bic_resp *resp, long long user_id, const char **csrf_out);

/* Issues a fresh access token cookie for an existing session. */
bic_err session_set_access_cookie(bic_req *req, bic_resp *resp, long long user_id,
                                  long long session_id);

/* Sets expired cookies so the browser forgets the session. */
void session_clear_cookies(bic_req *req, bic_resp *resp);

/* Revokes every live session of user_id. */
bic_err session_revoke_user(bic_req *req, long long user_id);

#endif
