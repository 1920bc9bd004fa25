/*
 * ag_state.h - what enrollment gave the agent, kept in <state_dir>/state.json
 * (mode 0600): {"server_id","credential","ccc_public_key","machine_id","listen_url"}.
 */
#ifndef BIC_AG_STATE_H
#define BIC_AG_STATE_H

#include <jansson.h>
#include <stddef.h>

#include "ag_sig.h"

#define AG_CREDENTIAL_MAX 255
#define AG_URL_MAX        1023

typedef struct ag_state {
    long long server_id;
    char credential[AG_CREDENTIAL_MAX + 1];
    char ccc_public_key[64]; /* base64, as CCC sent it */
    unsigned char key[AG_SIG_KEY_LEN];
    char machine_id[129];
    char listen_url[AG_URL_MAX + 1];
    long long heartbeat_interval; /* from the enrollment answer; not stored */
} ag_state;

/*
 * Validates an enrollment answer {"server_id","credential","ccc_public_key",
 * "heartbeat_interval"} into st (machine_id and listen_url are left as they
 * are). Returns 0 or -1 with err (which never contains the credential).
 */
int ag_state_from_enroll(const json_t *answer, ag_state *st, char *err, size_t errlen);

/* Loads <dir>/state.json. Returns 0, 1 when there is none, -1 with err when unusable. */
int ag_state_load(const char *dir, ag_state *st, char *err, size_t errlen);

/* Writes <dir>/state.json atomically with mode 0600. Returns 0 or -1 with err. */
int ag_state_save(const char *dir, const ag_state *st, char *err, size_t errlen);

/* Overwrites the secrets in st. */
void ag_state_wipe(ag_state *st);

#endif
