/*
 * ag_console.h - desktop consoles: the VNC websocket that the live XML of a
 * running domain announces (the heartbeat's console_host and console_port),
 * and the synchronous call desktop.console, which sets the VNC password of a
 * running domain and can disconnect its clients (docs/agent-protocol.md,
 * "Calls").
 */
#ifndef BIC_AG_CONSOLE_H
#define BIC_AG_CONSOLE_H

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <stddef.h>

#define AG_CONSOLE_HOST_MAX        64 /* CCC keeps console_host in 64 characters */
#define AG_CONSOLE_PASSWORD_MAX    8  /* VNC authentication uses 8 characters */
#define AG_CONSOLE_KICK_TIMEOUT_MS 5000
#define AG_CONSOLE_TEST_DRIVER     "the test driver has no console"

/* Where the VNC websocket of a domain listens; port 0: it has none. */
typedef struct ag_console {
    char host[AG_CONSOLE_HOST_MAX + 1];
    int port;
    int index;        /* of the VNC element among the domain's <graphics> */
    int has_password; /* the element carries passwd (XML read with VIR_DOMAIN_XML_SECURE) */
} ag_console;

/*
 * Reads the first <graphics type='vnc'> of a domain XML: its websocket port
 * (1..65535; "-1", absent or anything else: port 0) and its listen address
 * (the listen attribute, else the address of its first <listen>). A wildcard
 * or missing address (0.0.0.0, ::, "") becomes fallback_host. A host longer
 * than AG_CONSOLE_HOST_MAX counts as no websocket. Returns 1 when the domain
 * has a websocket, 0 when not (out->port 0; out->index -1 without VNC
 * graphics), -1 when xml does not parse.
 */
int ag_console_from_xml(const char *xml, const char *fallback_host, ag_console *out);

/*
 * Writes the host of an http(s)://host[:port][/path] URL, without IPv6
 * brackets, into buf. Returns 0, or -1 (not such a URL, or the host does not
 * fit).
 */
int ag_console_url_host(const char *url, char *buf, size_t len);

/* The params of desktop.console. */
typedef struct ag_console_req {
    char uuid[VIR_UUID_STRING_BUFLEN];
    char password[AG_CONSOLE_PASSWORD_MAX + 1];
    int disconnect;
} ag_console_req;

/*
 * Checks that params is exactly {"uuid": 36-character UUID, "password": 1..8
 * of [A-Za-z0-9], "disconnect": true|false} and copies it into *out (wipe
 * out->password after use). Returns 0, or -1 with err naming the parameter
 * ("unknown parameter 'x'", "params.x is required", "params.x must be ...").
 */
int ag_console_params(const json_t *params, ag_console_req *out, char *err, size_t errlen);

/*
 * The first <graphics type='vnc'> element of a domain XML with
 * passwd=password and connected='keep', passwdValidTo dropped and everything
 * else as it is (libvirt refuses a live change of port, websocket or listen):
 * what virDomainUpdateDeviceFlags takes to change the password. A new string
 * (it holds the password: wipe it, then free), or NULL when xml has no VNC
 * graphics, does not parse, or memory ran out.
 */
char *ag_console_graphics_xml(const char *xml, const char *password);

/*
 * Disconnects every client of the VNC server of graphics device idx of dom:
 * opens a client of its own with virDomainOpenGraphicsFD (authentication
 * skipped) and asks for exclusive access, which QEMU grants by closing the
 * other clients (libvirt allows only connected='keep' when the password of VNC
 * changes). Gives up after AG_CONSOLE_KICK_TIMEOUT_MS. Returns 0, or -1 with
 * err.
 */
int ag_console_kick(virDomainPtr dom, int idx, char *err, size_t errlen);

/*
 * Runs desktop.console on conn (borrowed; NULL while the hypervisor is down).
 * fallback_host replaces a wildcard listen address. Returns the HTTP status of
 * the answer:
 *   200 and *result (new): {"applied": true, "console_host", "console_port"};
 *       on libvirt's test driver {"applied": false, "reason":
 *       AG_CONSOLE_TEST_DRIVER}, with the console fields when its XML has a
 *       websocket;
 *   400 bad params (ag_console_params);
 *   404 "domain not found: <uuid>";
 *   409 "domain is not running: <uuid>", "domain <uuid> has no VNC
 *       websocket", "the VNC server of domain <uuid> was started without a
 *       password: it takes one from its next start";
 *   500 "<libvirt call>: <libvirt message>", or the clients were not
 *       disconnected ("cannot disconnect the console clients: ...", after the
 *       password changed);
 *   503 "hypervisor connection is down", or the connection broke during the
 *       call (the caller marks it lost).
 * err is set for every status but 200 and never holds the password.
 */
int ag_console_call(virConnectPtr conn, const json_t *params, const char *fallback_host,
                    json_t **result, char *err, size_t errlen);

#endif
