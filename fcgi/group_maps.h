/*
 * group_maps.h - the group-mapping routes that LDAP directories and OpenID Connect providers
 * share: GET and POST <source>/{id}/group-maps and DELETE <source>/{id}/group-maps/{map_id}. A
 * source (a directory, a provider) maps its own group names (a DN, a groups claim value) to BIC
 * groups. These functions run the steps every source takes (path ids, the source's lookup and
 * lock, the transaction, the answer); a bic_group_map_source names the source's statements and
 * does what differs (the body check, the stored row and the audit rows).
 */
#ifndef BIC_GROUP_MAPS_H
#define BIC_GROUP_MAPS_H

#include "util.h"

typedef struct bic_group_map_source {
    const char *noun; /* in "<noun> 7 has no group mapping 9" */
    const char *path; /* the routes' prefix: Location is <path>/<id>/group-maps/<map id> */
    /* Loads source id with st into rows (one row); BIC_E_NOT_FOUND or a database error, reported */
    bic_err (*load)(bic_req *req, bic_db *db, bic_stmt st, long long id, bic_rows *rows);
    bic_stmt get;            /* the source, before listing its mappings */
    bic_stmt get_for_update; /* the source, locked, before a mapping is added */
    bool lock_to_remove;     /* lock the source before a removal too (its row goes to remove) */
    bic_stmt list;           /* params: source id; one row per mapping, for item */
    bic_stmt map_get;        /* params: map id, source id */
    row_json_fn item;        /* a row of list or map_get as the API shows it */
    bic_err gone;            /* answered when a new mapping is gone before it is read back */
    /* Optional: the checks of the body the field table cannot express, before any database
     * work. BIC_E_OK or a reported error. */
    bic_err (*check)(bic_req *req);
    /* In the transaction, the source locked (its row in src): stores the body's mapping and
     * sets *map_id, then audits. BIC_E_OK or a reported error. */
    bic_err (*add)(bic_req *req, bic_db *db, long long id, const bic_rows *src, long long *map_id);
    /* In the transaction, mapping map (a row of map_get) found: removes it, then audits. src
     * is the locked source's row, NULL unless lock_to_remove. BIC_E_OK or a reported error. */
    bic_err (*remove)(bic_req *req, bic_db *db, long long id, const bic_rows *src,
                      const bic_rows *map);
} bic_group_map_source;

/* GET: 200 {"items": [...]} for the source in path parameter 0; 404 when there is none. */
bic_err group_maps_list(bic_req *req, bic_resp *resp, const bic_group_map_source *s);

/* POST: adds the body's mapping to the source in path parameter 0; 201 with Location. */
bic_err group_maps_add(bic_req *req, bic_resp *resp, const bic_group_map_source *s);

/* DELETE: removes mapping (path parameter 1) of the source (parameter 0); 204, or 404. */
bic_err group_maps_remove(bic_req *req, bic_resp *resp, const bic_group_map_source *s);

#endif
