/*
 * bic-agent - the BIC node agent on a bServer.
 *
 *   bic-agent [-r ROOT] [-u URI] facts    print host facts and the hypervisor as JSON
 *   bic-agent version
 *
 * This release reports host facts only; enrollment, heartbeats and task
 * execution come with the inventory issue (see docs/architecture.md).
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "facts.h"
#include "version.h"

static void silence_libvirt(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

/* Adds "hypervisor": {"uri","type","version"} or {"error"} to facts. */
static void add_hypervisor(json_t *facts, const char *uri)
{
    virSetErrorFunc(NULL, silence_libvirt);
    virConnectPtr c = virConnectOpenReadOnly(uri);
    if (!c) {
        virErrorPtr e = virGetLastError();
        json_object_set_new(facts, "hypervisor",
                            json_pack("{s:s, s:s}", "uri", uri, "error",
                                      e && e->message ? e->message : "cannot connect"));
        return;
    }
    unsigned long ver = 0;
    const char *type = virConnectGetType(c);
    virConnectGetVersion(c, &ver);
    char vs[32];
    snprintf(vs, sizeof(vs), "%lu.%lu.%lu", ver / 1000000, ver / 1000 % 1000, ver % 1000);
    json_object_set_new(
        facts, "hypervisor",
        json_pack("{s:s, s:s, s:s}", "uri", uri, "type", type ? type : "", "version", vs));
    virConnectClose(c);
}

int main(int argc, char **argv)
{
    const char *root = getenv("BIC_AGENT_ROOT") ? getenv("BIC_AGENT_ROOT") : "";
    const char *uri = getenv("BIC_AGENT_URI") ? getenv("BIC_AGENT_URI") : "qemu:///system";
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-r"))
            root = argv[i + 1];
        else if (!strcmp(argv[i], "-u"))
            uri = argv[i + 1];
        else
            break;
    }
    const char *cmd = i < argc ? argv[i] : "";
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("bic-agent %s (%s)\n", BIC_VERSION, BIC_GIT_REV);
        return 0;
    }
    if (!strcmp(cmd, "facts")) {
        json_t *f = facts_collect(root);
        if (!f) return 1;
        add_hypervisor(f, uri);
        json_dumpf(f, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(f);
        return 0;
    }
    fputs("usage: bic-agent [-r ROOT] [-u LIBVIRT_URI] facts|version\n", stderr);
    return 2;
}
