/*
 * handlers.h - every route handler, declared from routes.def.
 * Handlers live in h_<resource>.c, one file per resource family.
 */
#ifndef BIC_HANDLERS_H
#define BIC_HANDLERS_H

#include "http.h"

#define ROUTE(m, p, h, r, lim, f, s) bic_err h(bic_req *req, bic_resp *resp);
#include "routes.def"
#undef ROUTE

#endif
