/*
 * agentauth.h - authentication of machine callers: enrolled agents and
 * metrics scrapers.
 */
#ifndef BIC_AGENTAUTH_H
#define BIC_AGENTAUTH_H

#include "http.h"

/*
 * Accepts "Authorization: Bearer <server_id>.<credential>" when sha256(credential)
 * matches the server's stored hash; fills req->who.server_id. 401 otherwise.
 */
bic_err agent_identify(bic_req *req);

/*
 * Metrics: allowed with "Authorization: Bearer <[metrics] token>" or from an
 * address inside one of [metrics] networks (comma-separated CIDRs). 401 otherwise.
 */
bic_err metrics_authorize(bic_req *req);

/* True when the IPv4/IPv6 address addr lies in the comma-separated CIDR list. */
bool cidr_list_contains(const char *list, const char *addr);

#endif
