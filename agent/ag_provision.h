/*
 * ag_provision.h - the provisioning tasks of docs/agent-protocol.md
 * ("Provisioning tasks"): golden images fetched from CCC into a libvirt
 * storage pool, desktops as qcow2 overlays (linked clones) on them, and their
 * refresh, resize, deletion and capture into a new image version.
 *
 * Every task first makes sure the storage pool cfg->storage_pool exists and is
 * active (a dir pool at cfg->image_dir, built, started and autostarted when
 * the agent defines it). Params must have exactly the documented keys.
 * Nothing here keeps state between calls: the connection, the configuration
 * (state_dir) and the HTTP client come from the ag_exec_env of each call, so
 * the agents of a fleet never share anything.
 */
#ifndef BIC_AG_PROVISION_H
#define BIC_AG_PROVISION_H

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <stddef.h>

#include "ag_config.h"
#include "ag_exec.h"

#define AG_PROV_NOT_MINE  (-2) /* ag_provision_task: the type is not a provisioning task */
#define AG_PROV_MIN_VCPUS 8    /* new domains may grow to max(vcpus, this) vCPUs while running */
#define AG_PROV_MAX_VCPUS 255  /* what QEMU's default machine (i440fx) takes */
#define AG_PROV_CAPTURE_NO                                                                         \
    "capture needs volume download, which this hypervisor driver does not support"

/*
 * Runs provisioning task type with params (borrowed). Returns 0 with *result
 * (a new object), -1 with the reason in err, or AG_PROV_NOT_MINE for a type
 * that is none of these:
 *   image.fetch {version_id, path, sha256, size, volume} →
 *     {volume: path of the volume, sha256, size, verified: "content"|"download", changed}
 *   desktop.create {uuid, name, vcpus, memory_mib, disk_gib, base, overlay,
 *     nic: {type: virtio|sriov, mac?, vlan?, and for sriov vf_pci, pf, vf_index, mac},
 *     start} →
 *     {uuid, volume, state, changed, vnc_websocket: port or null,
 *      nic: {type, vf_pci (null for virtio), vf_config: "netlink"|"skipped"}}
 *     A VF must be VF vf_index of pf in the agent's discovery (ag_sriov.h), or
 *     the task fails with "<vf_pci> is not VF <n> of <pf> on this server (...)"
 *     before anything is made; with sriov_netlink on, its MAC and VLAN are set.
 *   desktop.refresh {uuid, base, overlay, disk_gib, start} → {state, volume, changed: true}
 *   desktop.delete {uuid, overlay} → {changed}
 *   desktop.set_spec {uuid, vcpus, memory_mib} → {vcpus, memory_mib, live, pending_restart}
 *   desktop.capture {uuid, overlay, version_id, upload_path} → {sha256, size}
 * Errors name the parameter ("unknown parameter 'x'", "params.x is required",
 * "params.x must be ..."), the missing thing ("domain not found: <uuid>",
 * "base volume not found: <path>"), a refused state ("the desktop must be
 * shut off to capture it", AG_PROV_CAPTURE_NO), a bad download ("sha256
 * mismatch: expected <hex> (<n> bytes), got ..."), CCC's answer ("GET <path>:
 * HTTP 404: ..."), or libvirt's ("<call>: <libvirt message>"). When a failing
 * task had created a volume or a domain, it removes it again.
 */
int ag_provision_task(const ag_exec_env *env, const char *type, const json_t *params,
                      json_t **result, char *err, size_t errlen);

/*
 * The domain XML desktop.create defines for params (checked as the task checks
 * them) with its disk at disk, for cfg on conn; a random VNC password is in it.
 * A new string, or NULL with err. For tests and diagnostics: the task itself
 * defines the domain.
 */
char *ag_provision_domain_xml(virConnectPtr conn, const ag_config *cfg, const json_t *params,
                              const char *disk, char *err, size_t errlen);

/*
 * The domain type new desktops get on conn: cfg->domain_type unless it is
 * "auto", then "test" on libvirt's test driver, "kvm" when /dev/kvm opens for
 * reading and writing, else "qemu". Static storage.
 */
const char *ag_provision_domain_type(virConnectPtr conn, const ag_config *cfg);

#endif
