#include "ag_migrate.h"

#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ag_domains.h"
#include "ag_provision.h"
#include "ag_util.h"

static int lverr(char *err, size_t errlen, const char *what)
{
    const char *m = virGetLastErrorMessage();
    snprintf(err, errlen, "%s: %s", what, m ? m : "unknown libvirt error");
    return -1;
}

static const char *const known[] = {"uuid",          "dest_uri",      "dest_listen_url",
                                    "dest_server_id", "dest_hostname", "copy_storage"};

static int check_params(const json_t *params, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        int ok = 0;
        for (size_t i = 0; i < AG_NELEM(known); i++)
            if (!strcmp(k, known[i])) ok = 1;
        if (!ok) {
            snprintf(err, errlen, "unknown parameter '%.40s'", k);
            return -1;
        }
    }
    const char *uuid = json_string_value(json_object_get(params, "uuid"));
    if (!uuid || strlen(uuid) != VIR_UUID_STRING_BUFLEN - 1) {
        snprintf(err, errlen, "params.uuid is not a UUID");
        return -1;
    }
    const char *uri = json_string_value(json_object_get(params, "dest_uri"));
    if (!uri || !*uri || !strstr(uri, ":")) {
        snprintf(err, errlen, "params.dest_uri is required (a libvirt URI)");
        return -1;
    }
    const char *cs = json_string_value(json_object_get(params, "copy_storage"));
    if (json_object_get(params, "copy_storage") &&
        (!cs || (strcmp(cs, "none") && strcmp(cs, "inc") && strcmp(cs, "all")))) {
        snprintf(err, errlen, "params.copy_storage must be none, inc or all");
        return -1;
    }
    return 0;
}

static int dom_state(virDomainPtr d)
{
    int st = VIR_DOMAIN_NOSTATE, reason;
    if (virDomainGetState(d, &st, &reason, 0) < 0) st = VIR_DOMAIN_NOSTATE;
    return st;
}

/* The destination is a member of this fleet: define there, then drop here. */
static int simulate(virDomainPtr dom, virConnectPtr dconn, int active, char *err, size_t errlen,
                    int *state)
{
    AG_AUTOFREE char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE);
    if (!xml) return lverr(err, errlen, "virDomainGetXMLDesc");
    virDomainPtr nd = virDomainDefineXML(dconn, xml);
    if (!nd) return lverr(err, errlen, "define at the destination");
    if (active && virDomainCreate(nd) < 0) {
        lverr(err, errlen, "start at the destination");
        virDomainUndefine(nd);
        virDomainFree(nd);
        return -1;
    }
    *state = dom_state(nd);
    virDomainFree(nd);
    if (active && virDomainDestroy(dom) < 0) return lverr(err, errlen, "virDomainDestroy (source)");
    if (virDomainUndefine(dom) < 0) return lverr(err, errlen, "virDomainUndefine (source)");
    return 0;
}

static int migrate(virDomainPtr dom, const char *uri, const char *copy, char *err, size_t errlen,
                   int *state)
{
    virConnectPtr dconn = virConnectOpen(uri);
    if (!dconn) return lverr(err, errlen, "cannot open the destination");
    unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE;
    if (copy && !strcmp(copy, "inc")) flags |= VIR_MIGRATE_NON_SHARED_INC;
    if (copy && !strcmp(copy, "all")) flags |= VIR_MIGRATE_NON_SHARED_DISK;
    int rc = 0;
    virDomainPtr nd = virDomainMigrate3(dom, dconn, NULL, 0, flags);
    if (!nd) {
        rc = lverr(err, errlen, "virDomainMigrate3");
    } else {
        *state = dom_state(nd);
        virDomainFree(nd);
    }
    virConnectClose(dconn);
    return rc;
}

int ag_migrate_task(const ag_exec_env *env, const char *type, const json_t *params,
                    json_t **result, char *err, size_t errlen)
{
    if (strcmp(type, "desktop.migrate")) return AG_PROV_NOT_MINE;
    if (check_params(params, err, errlen) < 0) return -1;
    if (!env->conn) {
        snprintf(err, errlen, "hypervisor connection is down");
        return -1;
    }
    const char *uuid = json_string_value(json_object_get(params, "uuid"));
    const char *uri = json_string_value(json_object_get(params, "dest_uri"));
    const char *lurl = json_string_value(json_object_get(params, "dest_listen_url"));
    virDomainPtr dom = virDomainLookupByUUIDString(env->conn, uuid);
    if (!dom) {
        snprintf(err, errlen, "domain not found: %s", uuid);
        return -1;
    }
    int active = virDomainIsActive(dom), state = VIR_DOMAIN_NOSTATE, rc;
    virConnectPtr peer = env->peer_conn && lurl && *lurl ? env->peer_conn(env->peer_arg, lurl) : NULL;
    const char *mode = peer ? "simulated" : "libvirt";
    if (active < 0)
        rc = lverr(err, errlen, "virDomainIsActive");
    else if (peer)
        rc = simulate(dom, peer, active, err, errlen, &state);
    else
        rc = migrate(dom, uri, json_string_value(json_object_get(params, "copy_storage")), err,
                     errlen, &state);
    if (peer) virConnectClose(peer);
    virDomainFree(dom);
    if (rc < 0) return -1;
    *result = json_pack("{s:s, s:s, s:s}", "mode", mode, "dest_uri", uri, "state",
                        ag_dom_state_name(state));
    if (!*result) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
