#include "ag_facts.h"

#include <limits.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "facts.h"

long long ag_facts_storage_gib(const char *root)
{
    char path[PATH_MAX];
    struct statvfs vfs;
    snprintf(path, sizeof(path), "%s/var/lib/libvirt/images", root);
    if (statvfs(path, &vfs) < 0) {
        snprintf(path, sizeof(path), "%s/", root);
        if (statvfs(path, &vfs) < 0) return 0;
    }
    return (long long)((unsigned long long)vfs.f_blocks * vfs.f_frsize >> 30);
}

json_t *ag_facts_hypervisor(const char *uri, virConnectPtr conn)
{
    const char *type = "";
    char version[32] = "";
    if (conn) {
        unsigned long ver = 0;
        const char *t = virConnectGetType(conn);
        if (t) type = t;
        if (virConnectGetVersion(conn, &ver) == 0)
            snprintf(version, sizeof(version), "%lu.%lu.%lu", ver / 1000000, ver / 1000 % 1000,
                     ver % 1000);
    }
    return json_pack("{s:s, s:s, s:s}", "uri", uri, "type", type, "version", version);
}

json_t *ag_facts_enroll(const char *root, const char *uri, virConnectPtr conn)
{
    json_t *f = facts_collect(root);
    if (!f) return NULL;
    json_t *nics = json_incref(json_object_get(f, "nics"));
    json_t *out =
        json_pack("{s:O, s:O, s:O, s:I, s:o, s:o}", "cpus", json_object_get(f, "cpus"), "cores",
                  json_object_get(f, "cores"), "memory_mib", json_object_get(f, "memory_mib"),
                  "storage_gib", (json_int_t)ag_facts_storage_gib(root), "nics", nics, "hypervisor",
                  ag_facts_hypervisor(uri, conn));
    json_decref(f);
    return out;
}
