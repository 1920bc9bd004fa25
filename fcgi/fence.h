/*
 * fence.h - a server's BMC: powering a failed server off, for failure recovery (recovery.c),
 * and a sleeping one on, for automatic power control (power.c).
 *
 * Redfish: over libcurl, GET /redfish/v1/Systems for the system, POST its
 * Actions/ComputerSystem.Reset {"ResetType": "ForceOff"}, then GET the system until its
 * PowerState is "Off". IPMI: `ipmitool -I lanplus ... chassis power off` and `chassis power
 * status`, started with posix_spawnp and an argv array (never a shell), the password in the
 * IPMI_PASSWORD environment variable (-E, never on the command line), killed after a timeout.
 * No call blocks longer than its timeout; none is made inside a database transaction.
 */
#ifndef BIC_FENCE_H
#define BIC_FENCE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { FENCE_REDFISH, FENCE_IPMI } fence_type;

typedef struct {
    fence_type type;
    const char *address;  /* redfish: http(s)://host[:port]; ipmi: host or host:port */
    const char *user;     /* may be "" */
    const char *password; /* may be "" */
    const char *ca_pem;   /* redfish over https: the BMC's CA (NULL: the system's) */
    long timeout_ms;      /* per call */
} fence_target;

typedef enum {
    FENCE_OFF,     /* the BMC says the server is off */
    FENCE_PENDING, /* the request was accepted; not off yet */
    FENCE_FAILED,  /* the BMC cannot be reached, refused, or answered nonsense: why says */
} fence_result;

/* Asks the BMC to power the server off (a hard power-off). FENCE_OFF when it already is. */
fence_result fence_power_off(const fence_target *t, char *why, size_t len);

/*
 * Asks the BMC to power the server on (automatic power control's wake, power.c): Redfish
 * ResetType "On" unless PowerState is already "On"; IPMI `chassis power on`. 0 when the BMC
 * accepted it or the server is on (why says which), -1 when not (why says why).
 */
int fence_power_on(const fence_target *t, char *why, size_t len);

/* Reads the power state: FENCE_OFF, FENCE_PENDING (still on), or FENCE_FAILED. */
fence_result fence_power_state(const fence_target *t, char *why, size_t len);

/* Address checks for the API: true when addr suits type (why says what is wrong). */
bool fence_address_valid(fence_type type, const char *addr, char *why, size_t len);

/* The program run for IPMI ("ipmitool"; tests may point BIC_IPMITOOL at another file). */
const char *fence_ipmitool(void);

#endif
