/*
 * dispatch.h - one request from parsed parameters to a written response.
 */
#ifndef BIC_DISPATCH_H
#define BIC_DISPATCH_H

#include "http.h"

/*
 * Runs the checks every route shares, in this order, before any handler:
 * method and path (404/405), declared body limit (413, before reading),
 * identity and role (401/403), CSRF for state-changing methods (403),
 * content type and strict JSON body validation (415/400/422). Then calls the
 * handler. Always leaves a complete response in resp; returns the error code
 * the request ended with (BIC_E_OK on success).
 * An upload route (fields_upload) never reads a body or checks its type: nginx
 * stores it in req->upload_file, and then (and in nginx's check before it does)
 * nginx's limit replaces the route's. nginx's upload check
 * (req->upload_check) runs the same steps and the handler's checks that need no
 * file, and answers a refusal with 403 and headers X-BIC-Status (the real status)
 * and X-BIC-Error (the error body).
 */
bic_err dispatch(bic_req *req, bic_resp *resp);

/* Reads the request body (req->content_length bytes) into the arena; set by the server. */
extern bic_err (*dispatch_read_body)(bic_req *req);

#endif
