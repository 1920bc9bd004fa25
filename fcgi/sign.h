/*
 * sign.h - CCC's Ed25519 key: signs every task pushed to an agent. The agent
 * verifies with the public key it received at enrollment (docs/agent-protocol.md).
 */
#ifndef BIC_SIGN_H
#define BIC_SIGN_H

#include <jansson.h>
#include <stddef.h>

#include "config.h"

/* Loads the PEM private key from cfg->auth_sign_key_file. 0 or -1 (logged). */
int sign_init(const bic_config *cfg);
/* Loads a key from PEM text (tests). 0 or -1. */
int sign_init_pem(const char *pem, size_t len);

/* Base64 of the raw 32-byte public key (static storage), or NULL before init. */
const char *sign_public_b64(void);

/* Signs data; writes base64 of the 64-byte signature (NUL-terminated) to out (>= 89 bytes). 0 or
 * -1. */
int sign_b64(const void *data, size_t len, char out[89]);

/*
 * The signed envelope of a task push (task_id > 0) or a synchronous call (task_id 0): the JSON
 * text {task_id, server_id, type, params (stolen), issued_at, nonce}, malloc'd, and its
 * "X-BIC-Signature: ..." header line in sig_header. NULL on failure (params released).
 */
char *sign_task_envelope(long long task_id, long long server_id, const char *type, json_t *params,
                         char sig_header[128]);

#endif
