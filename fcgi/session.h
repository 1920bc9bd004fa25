/*
 * session.h - who is calling: session cookies and CSRF.
 */
#ifndef BIC_SESSION_H
#define BIC_SESSION_H

#include "http.h"

/*
 * Fills req->who from the session cookie. A missing, expired or revoked
 * session leaves the caller anonymous (the route's role check then answers
 * 401). Returns an error only when the database cannot be asked.
 */
bic_err session_identify(bic_req *req, bic_resp *resp);

/* For state-changing requests: Origin must be ours and the CSRF header must match. */
bic_err session_check_csrf(bic_req *req);

#endif
