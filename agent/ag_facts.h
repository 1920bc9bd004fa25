/*
 * ag_facts.h - the "facts" object of an enrollment: facts_collect() plus
 * storage_gib and the hypervisor.
 */
#ifndef BIC_AG_FACTS_H
#define BIC_AG_FACTS_H

#include <jansson.h>
#include <libvirt/libvirt.h>

/*
 * {"cpus","cores","memory_mib","storage_gib","nics":[...],
 *  "hypervisor":{"uri","type","version"}}
 * storage_gib is the size of the file system holding <root>/var/lib/libvirt/images
 * (or <root>/ when that does not exist). conn may be NULL (hypervisor down): type
 * and version are then "". NULL on OOM.
 */
json_t *ag_facts_enroll(const char *root, const char *uri, virConnectPtr conn);

/* {"uri","type","version"} of conn; type and version "" when conn is NULL. */
json_t *ag_facts_hypervisor(const char *uri, virConnectPtr conn);

/* Size in GiB of the file system holding path; 0 when it cannot be asked. */
long long ag_facts_storage_gib(const char *root);

#endif
