/*
 * ag_config.h - bic-agent configuration: [agent] keys of an INI file (libinih),
 * each overridable by the environment variable BIC_AGENT_<KEY> (upper case),
 * e.g. BIC_AGENT_CCC_URL.
 *
 * Every key is one X(name, type, default) row of AG_CONFIG_KEYS; the struct
 * field, the INI parsing and the environment override all come from that row.
 */
#ifndef BIC_AG_CONFIG_H
#define BIC_AG_CONFIG_H

#include <stddef.h>

/* X(name, type: STR|INT, default) ; the struct field is ag_config.name */
#define AG_CONFIG_KEYS(X)                                                                          \
    X(ccc_url, STR, "") /* https://ccc.example:443, no trailing path */                            \
    X(ca_file, STR, "") /* CA bundle for CCC's certificate; "" = system */                         \
    X(token, STR, "")   /* enrollment token (bbt_...) */                                           \
    X(state_dir, STR, "/var/lib/bic-agent")                                                        \
    X(listen, STR, "0.0.0.0:7443") /* task listener host:port; port 0 = any free port */           \
    X(advertise_url, STR, "")      /* what CCC calls; "" = http://<listen> */                      \
    X(libvirt_uri, STR, "qemu:///system")                                                          \
    X(root_prefix, STR, "")                  /* /proc, /sys and /etc are read below this */        \
    X(machine_id, STR, "")                   /* "" = <root_prefix>/etc/machine-id */               \
    X(hostname, STR, "")                     /* "" = gethostname() */                              \
    X(heartbeat_interval, INT, 0)            /* seconds; 0 = what CCC says at enrollment */        \
    X(storage_pool, STR, "bic")              /* libvirt pool of images and overlays */             \
    X(image_dir, STR, "/var/lib/bic/images") /* its target when the agent defines it */            \
    X(domain_type, STR, "auto")              /* auto, kvm, qemu or test (ag_provision.h) */        \
    X(vnc_listen, STR, "127.0.0.1")          /* where desktops' VNC servers listen */              \
    X(network, STR, "")                      /* virtio NICs' libvirt network; "" = user mode */    \
    X(bridge, STR, "")       /* virtio NICs on this host bridge (before network); "" = none */     \
    X(sriov_numvfs, STR, "") /* "ens1f0=8,enp3s0f0=4": VFs to enable at start; "" = as found */    \
    X(sriov_netlink, STR, "auto") /* VF MAC/VLAN by rtnetlink: auto (root_prefix ""), on, off */

#define AG_CFG_TYPE_STR char *
#define AG_CFG_TYPE_INT long

typedef struct ag_config {
#define AG_X_FIELD(name, type, def) AG_CFG_TYPE_##type name;
    AG_CONFIG_KEYS(AG_X_FIELD)
#undef AG_X_FIELD
    /* filled by ag_config_resolve() */
    char listen_host[256];
    int listen_port;
} ag_config;

/*
 * Fills cfg with the defaults, then the file at path (NULL: none), then the
 * environment. Returns 0, or -1 with a message in err (unknown section or key,
 * bad number, unreadable file, syntax error). Release with ag_config_free().
 */
int ag_config_load(ag_config *cfg, const char *path, char *err, size_t errlen);

/*
 * Checks the values the daemon needs and fills the derived ones: machine_id
 * from <root_prefix>/etc/machine-id, hostname from gethostname(), listen_host
 * and listen_port from listen. advertise_url stays "" when not configured (the
 * daemon builds it once it knows the bound port). Returns 0 or -1 with err.
 */
int ag_config_resolve(ag_config *cfg, char *err, size_t errlen);

void ag_config_free(ag_config *cfg);

/*
 * 1 when VF MAC and VLAN are set through rtnetlink before a VF desktop is
 * defined: sriov_netlink "on", or "auto" with root_prefix "" (this machine's
 * /sys; a fixture tree has no such VFs in the kernel). 0 otherwise.
 */
int ag_config_sriov_netlink(const ag_config *cfg);

/*
 * Makes dst a deep copy of src (strings duplicated, derived values copied).
 * Returns 0, or -1 when out of memory (dst is then safe to ag_config_free).
 */
int ag_config_copy(ag_config *dst, const ag_config *src);

/*
 * Replaces the string key name (e.g. "hostname") of cfg with value. Returns 0,
 * or -1 for an unknown or non-string key or when out of memory.
 */
int ag_config_set(ag_config *cfg, const char *name, const char *value);

/*
 * The URL CCC calls for tasks on a resolved configuration: advertise_url when
 * set, else http://<listen host>:<bound_port>, with hostname for a wildcard
 * address (0.0.0.0, ::, "").
 */
void ag_config_listen_url(const ag_config *cfg, int bound_port, char *buf, size_t len);

/*
 * Splits "host:port", "[v6]:port" or ":port" (host "") into host and port.
 * Returns 0, or -1 when the port is missing or not 0..65535.
 */
int ag_listen_parse(const char *listen, char *host, size_t hostlen, int *port);

#endif
