/*
 * handlers.h - every route handler and body field table, declared from routes.def.
 * Handlers live in h_<resource>.c, one file per resource family.
 */
#ifndef BIC_HANDLERS_H
#define BIC_HANDLERS_H

#include "http.h"
#include "json.h"

/* field tables of the catalog and pool routes */
#include "catalog.h"
#include "pools.h"
#include "broker.h"

#define ROUTE(m, p, h, r, lim, f, s) bic_err h(bic_req *req, bic_resp *resp);
#include "routes.def"
#undef ROUTE

extern const bic_field fields_login[], fields_password_change[];
extern const bic_field fields_user_create[], fields_user_update[], fields_user_password[];
extern const bic_field fields_group[], fields_group_update[];
extern const bic_field fields_bb[], fields_bb_update[], fields_module[], fields_module_update[];
extern const bic_field fields_server_update[], fields_token[], fields_task[];
extern const bic_field fields_enroll[], fields_heartbeat[], fields_events[], fields_task_status[];

/* A server row selected with SERVER_COLS, with capacity by the paper's rules. New reference. */
json_t *server_json(bic_req *req, const bic_rows *r, size_t i);
/* A task row selected with TASK_COLS. New reference. */
json_t *task_json(bic_req *req, const bic_rows *r, size_t i);

/* A user row selected with USER_COLS as the API shows it. New reference. */
json_t *user_json(bic_req *req, const bic_rows *r, size_t i);

#endif
