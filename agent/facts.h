/*
 * facts.h - host facts of a bServer, read through a root prefix.
 *
 * Every path is read as <root>/proc/... and <root>/sys/..., so the tests run on
 * fixture trees that mirror real machines. root "" means the real machine.
 */
#ifndef BIC_AGENT_FACTS_H
#define BIC_AGENT_FACTS_H

#include <jansson.h>

/*
 * Returns a new JSON object:
 *   {"cpus": logical CPUs, "cores": physical cores, "memory_mib": MemTotal,
 *    "nics": the physical NICs and their SR-IOV VFs, ordered by name
 *    (ag_sriov_collect: docs/agent-protocol.md, "The nics array")}
 * NULL on out-of-memory.
 */
json_t *facts_collect(const char *root);

#endif
