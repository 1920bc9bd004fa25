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
 *    "nics": [{"name","speed_mbps","sriov_capable","sriov_total_vfs","driver"}]}
 * Physical NICs only (those with a device link). NULL on out-of-memory.
 */
json_t *facts_collect(const char *root);

#endif
