#include "ag_exec.h"

#include <libvirt/virterror.h>
#include <stdio.h>
#include <string.h>

#include "ag_console.h"
#include "ag_domains.h"
#include "ag_migrate.h"
#include "ag_power.h"
#include "ag_provision.h"
#include "ag_util.h"

enum op { OP_START, OP_SHUTDOWN, OP_REBOOT, OP_DESTROY };

static const struct {
    const char *type;
    enum op op;
} domain_ops[] = {
    {"domain.start", OP_START},
    {"domain.shutdown", OP_SHUTDOWN},
    {"domain.reboot", OP_REBOOT},
    {"domain.destroy", OP_DESTROY},
};

static int lverr(char *err, size_t errlen, const char *what)
{
    const char *m = virGetLastErrorMessage();
    snprintf(err, errlen, "%s: %s", what, m ? m : "unknown libvirt error");
    return -1;
}

/* params must be exactly {"uuid": "<36 chars>"}; copies it into uuid. */
static int uuid_param(const json_t *params, char uuid[VIR_UUID_STRING_BUFLEN], char *err,
                      size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        if (strcmp(k, "uuid")) {
            snprintf(err, errlen, "unknown parameter '%.40s'", k);
            return -1;
        }
    }
    const char *s = json_string_value(json_object_get(params, "uuid"));
    if (!s) {
        snprintf(err, errlen, "params.uuid is required");
        return -1;
    }
    if (strlen(s) != VIR_UUID_STRING_BUFLEN - 1) {
        snprintf(err, errlen, "params.uuid is not a UUID");
        return -1;
    }
    memcpy(uuid, s, VIR_UUID_STRING_BUFLEN);
    return 0;
}

static int run_domain_op(virConnectPtr conn, enum op op, const char *type, const json_t *params,
                         json_t **result, char *err, size_t errlen)
{
    char uuid[VIR_UUID_STRING_BUFLEN];
    if (uuid_param(params, uuid, err, errlen) < 0) return -1;
    if (!conn) {
        snprintf(err, errlen, "hypervisor connection is down");
        return -1;
    }
    virDomainPtr dom = virDomainLookupByUUIDString(conn, uuid);
    if (!dom) {
        virErrorPtr e = virGetLastError();
        if (!e || e->code == VIR_ERR_NO_DOMAIN || e->code == VIR_ERR_INVALID_ARG) {
            snprintf(err, errlen, "domain not found: %s", uuid);
            return -1;
        }
        return lverr(err, errlen, "virDomainLookupByUUIDString");
    }
    int rc = -1, changed = 1;
    int active = virDomainIsActive(dom);
    if (active < 0) {
        lverr(err, errlen, "virDomainIsActive");
        goto out;
    }
    switch (op) {
    case OP_START:
        if (active)
            changed = 0;
        else if (virDomainCreate(dom) < 0)
            goto lv_fail;
        break;
    case OP_SHUTDOWN:
        if (!active)
            changed = 0;
        else if (virDomainShutdown(dom) < 0)
            goto lv_fail;
        break;
    case OP_REBOOT:
        if (!active) {
            snprintf(err, errlen, "domain is not running: %s", uuid);
            goto out;
        }
        if (virDomainReboot(dom, 0) < 0) goto lv_fail;
        break;
    case OP_DESTROY:
        if (!active)
            changed = 0;
        else if (virDomainDestroy(dom) < 0)
            goto lv_fail;
        break;
    }
    int st = VIR_DOMAIN_NOSTATE, reason;
    if (virDomainGetState(dom, &st, &reason, 0) < 0) st = VIR_DOMAIN_NOSTATE;
    *result = json_pack("{s:s, s:b}", "state", ag_dom_state_name(st), "changed", changed);
    if (!*result) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    rc = 0;
    goto out;
lv_fail:
    lverr(err, errlen, type);
out:
    virDomainFree(dom);
    return rc;
}

int ag_exec_task(const ag_exec_env *env, const char *type, const json_t *params, json_t **result,
                 char *err, size_t errlen)
{
    *result = NULL;
    for (size_t i = 0; i < AG_NELEM(domain_ops); i++)
        if (!strcmp(type, domain_ops[i].type))
            return run_domain_op(env->conn, domain_ops[i].op, type, params, result, err, errlen);
    if (!strcmp(type, "inventory.refresh")) {
        long long seq = 0;
        if (!env->refresh) {
            snprintf(err, errlen, "inventory.refresh is not available");
            return -1;
        }
        if (env->refresh(env->arg, &seq, err, errlen) < 0) return -1;
        *result = json_pack("{s:I}", "heartbeat_seq", (json_int_t)seq);
        if (!*result) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    int rc = ag_provision_task(env, type, params, result, err, errlen);
    if (rc != AG_PROV_NOT_MINE) return rc;
    if ((rc = ag_power_task(env, type, params, result, err, errlen)) != AG_PROV_NOT_MINE) return rc;
    if ((rc = ag_migrate_task(env, type, params, result, err, errlen)) != AG_PROV_NOT_MINE) return rc;
    snprintf(err, errlen, AG_EXEC_UNKNOWN_TYPE);
    return -1;
}

/* The allow-list of calls: only what must be answered before CCC can go on. */
static const struct {
    const char *type;
    int (*run)(virConnectPtr conn, const json_t *params, const char *console_host, json_t **result,
               char *err, size_t errlen);
} calls[] = {
    {"desktop.console", ag_console_call},
};

int ag_exec_call(virConnectPtr conn, const char *console_host, const char *type,
                 const json_t *params, json_t **result, char *err, size_t errlen)
{
    *result = NULL;
    for (size_t i = 0; i < AG_NELEM(calls); i++)
        if (!strcmp(type, calls[i].type))
            return calls[i].run(conn, params, console_host, result, err, errlen);
    snprintf(err, errlen, AG_EXEC_NOT_A_CALL);
    return 400;
}
