#include "ag_console.h"

#include <errno.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ag_hv.h"
#include "ag_util.h"

/* ---- the VNC element of a domain XML ---- */

static xmlDocPtr xml_parse(const char *xml)
{
    return xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                         XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
    for (n = n ? n->children : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, (const xmlChar *)name)) return n;
    return NULL;
}

static int attr_is(xmlNodePtr n, const char *name, const char *value)
{
    xmlChar *v = xmlGetProp(n, (const xmlChar *)name);
    int is = v && !xmlStrcmp(v, (const xmlChar *)value);
    xmlFree(v);
    return is;
}

/* The first <graphics type='vnc'> of /domain/devices and its index among the <graphics>. */
static xmlNodePtr vnc_node(xmlDocPtr doc, int *idx)
{
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"domain")) return NULL;
    xmlNodePtr devices = child(root, "devices");
    int i = 0;
    for (xmlNodePtr g = devices ? devices->children : NULL; g; g = g->next) {
        if (g->type != XML_ELEMENT_NODE || xmlStrcmp(g->name, (const xmlChar *)"graphics"))
            continue;
        if (attr_is(g, "type", "vnc")) {
            *idx = i;
            return g;
        }
        i++;
    }
    return NULL;
}

static int wildcard(const char *host)
{
    return !*host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::");
}

int ag_console_from_xml(const char *xml, const char *fallback_host, ag_console *out)
{
    memset(out, 0, sizeof(*out));
    out->index = -1;
    xmlDocPtr doc = xml_parse(xml);
    if (!doc) return -1;
    int idx = -1, rc = 0;
    xmlNodePtr g = vnc_node(doc, &idx);
    if (g) {
        out->index = idx;
        xmlChar *pw = xmlGetProp(g, (const xmlChar *)"passwd");
        out->has_password = pw != NULL;
        if (pw) {
            explicit_bzero(pw, strlen((const char *)pw));
            xmlFree(pw);
        }
        xmlChar *ws = xmlGetProp(g, (const xmlChar *)"websocket");
        char *end = NULL;
        long port = ws ? strtol((const char *)ws, &end, 10) : 0;
        if (!ws || end == (char *)ws || *end || port < 1 || port > 65535) port = 0;
        xmlFree(ws);
        xmlChar *listen = xmlGetProp(g, (const xmlChar *)"listen");
        if (!listen) listen = xmlGetProp(child(g, "listen"), (const xmlChar *)"address");
        const char *host = listen ? (const char *)listen : "";
        if (wildcard(host)) host = fallback_host ? fallback_host : "";
        if (port && *host && ag_strlcpy(out->host, host, sizeof(out->host)) == 0) {
            out->port = (int)port;
            rc = 1;
        }
        xmlFree(listen);
    }
    xmlFreeDoc(doc);
    return rc;
}

char *ag_console_graphics_xml(const char *xml, const char *password)
{
    xmlDocPtr doc = xml_parse(xml);
    if (!doc) return NULL;
    int idx;
    char *out = NULL;
    xmlNodePtr g = vnc_node(doc, &idx);
    xmlBufferPtr buf = g ? xmlBufferCreate() : NULL;
    if (buf && xmlSetProp(g, (const xmlChar *)"passwd", (const xmlChar *)password) &&
        xmlSetProp(g, (const xmlChar *)"connected", (const xmlChar *)"keep")) {
        xmlUnsetProp(g, (const xmlChar *)"passwdValidTo");
        if (xmlNodeDump(buf, doc, g, 0, 0) > 0) out = strdup((const char *)xmlBufferContent(buf));
    }
    if (buf) {
        explicit_bzero((void *)xmlBufferContent(buf), (size_t)xmlBufferLength(buf));
        xmlBufferFree(buf);
    }
    xmlFreeDoc(doc);
    return out;
}

int ag_console_url_host(const char *url, char *buf, size_t len)
{
    const char *p;
    if (!strncmp(url, "http://", 7))
        p = url + 7;
    else if (!strncmp(url, "https://", 8))
        p = url + 8;
    else
        return -1;
    size_t n;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close) return -1;
        p++;
        n = (size_t)(close - p);
    } else {
        n = strcspn(p, ":/?#");
    }
    if (!n || n >= len || memchr(p, '@', n)) return -1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return 0;
}

/* ---- params ---- */

static int uuid_ok(const char *s)
{
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-'
                 : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

static int password_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= AG_CONSOLE_PASSWORD_MAX &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") == n;
}

int ag_console_params(const json_t *params, ag_console_req *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"uuid", "password", "disconnect"};
    memset(out, 0, sizeof(*out));
    if (!json_is_object(params)) {
        snprintf(err, errlen, "params must be an object");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        size_t i = 0;
        while (i < AG_NELEM(keys) && strcmp(keys[i], k))
            i++;
        if (i == AG_NELEM(keys)) {
            snprintf(err, errlen, "unknown parameter '%.40s'", k);
            return -1;
        }
    }
    for (size_t i = 0; i < AG_NELEM(keys); i++)
        if (!json_object_get(params, keys[i])) {
            snprintf(err, errlen, "params.%s is required", keys[i]);
            return -1;
        }
    const json_t *uuid = json_object_get(params, "uuid");
    const json_t *pw = json_object_get(params, "password");
    const json_t *disc = json_object_get(params, "disconnect");
    /* json_string_length: an embedded NUL must not shorten what is checked */
    if (!json_is_string(uuid) || strlen(json_string_value(uuid)) != json_string_length(uuid) ||
        !uuid_ok(json_string_value(uuid))) {
        snprintf(err, errlen, "params.uuid must be a UUID");
        return -1;
    }
    if (!json_is_string(pw) || strlen(json_string_value(pw)) != json_string_length(pw) ||
        !password_ok(json_string_value(pw))) {
        snprintf(err, errlen, "params.password must be 1 to %d of A-Z a-z 0-9",
                 AG_CONSOLE_PASSWORD_MAX);
        return -1;
    }
    if (!json_is_boolean(disc)) {
        snprintf(err, errlen, "params.disconnect must be true or false");
        return -1;
    }
    snprintf(out->uuid, sizeof(out->uuid), "%s", json_string_value(uuid));
    snprintf(out->password, sizeof(out->password), "%s", json_string_value(pw));
    out->disconnect = json_is_true(disc);
    return 0;
}

/* ---- disconnecting the clients: an exclusive client of our own (RFB 3.8) ---- */

/* Reads or writes exactly n bytes of fd before deadline (monotonic ms). 0, or -1 with err. */
static int rfb_io(int fd, void *buf, size_t n, int writing, long long deadline, char *err,
                  size_t errlen)
{
    unsigned char *p = buf;
    while (n) {
        long long left = deadline - ag_mono_ms();
        struct pollfd pfd = {fd, writing ? POLLOUT : POLLIN, 0};
        int r = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            snprintf(err, errlen, "the VNC server did not answer within %d ms",
                     AG_CONSOLE_KICK_TIMEOUT_MS);
            return -1;
        }
        ssize_t k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (k <= 0) {
            snprintf(err, errlen, "the VNC server closed the connection%s%s", k < 0 ? ": " : "",
                     k < 0 ? strerror(errno) : "");
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int rfb_exclusive(int fd, char *err, size_t errlen)
{
    long long deadline = ag_mono_ms() + AG_CONSOLE_KICK_TIMEOUT_MS;
    unsigned char b[256];
    if (rfb_io(fd, b, 12, 0, deadline, err, errlen) < 0) return -1;
    if (memcmp(b, "RFB 003.", 8)) {
        snprintf(err, errlen, "the VNC server does not speak RFB 3");
        return -1;
    }
    if (rfb_io(fd, "RFB 003.008\n", 12, 1, deadline, err, errlen) < 0) return -1;
    unsigned char count;
    if (rfb_io(fd, &count, 1, 0, deadline, err, errlen) < 0) return -1;
    if (!count) {
        snprintf(err, errlen, "the VNC server refused the connection");
        return -1;
    }
    if (rfb_io(fd, b, count, 0, deadline, err, errlen) < 0) return -1;
    if (!memchr(b, 1, count)) {
        snprintf(err, errlen, "the VNC server asks this client for authentication");
        return -1;
    }
    unsigned char none = 1, exclusive = 0;
    if (rfb_io(fd, &none, 1, 1, deadline, err, errlen) < 0) return -1;
    if (rfb_io(fd, b, 4, 0, deadline, err, errlen) < 0) return -1;
    if (b[0] | b[1] | b[2] | b[3]) {
        snprintf(err, errlen, "the VNC server refused the connection");
        return -1;
    }
    /* the server closes the other clients before it answers with ServerInit */
    if (rfb_io(fd, &exclusive, 1, 1, deadline, err, errlen) < 0) return -1;
    return rfb_io(fd, b, 24, 0, deadline, err, errlen);
}

int ag_console_kick(virDomainPtr dom, int idx, char *err, size_t errlen)
{
    int fd = virDomainOpenGraphicsFD(dom, (unsigned)idx, VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH);
    if (fd < 0) {
        const char *m = virGetLastErrorMessage();
        snprintf(err, errlen, "virDomainOpenGraphicsFD: %s", m ? m : "unknown libvirt error");
        return -1;
    }
    int rc = rfb_exclusive(fd, err, errlen);
    close(fd);
    return rc;
}

/* ---- desktop.console ---- */

/* A string that may hold a password: wiped, then freed. */
static void wipe_freep(char **p)
{
    if (*p) explicit_bzero(*p, strlen(*p));
    free(*p);
}
#define AUTOWIPE __attribute__((cleanup(wipe_freep)))

/* Maps the libvirt error of call: 503 when the connection is gone, else 500. */
static int lverr(const char *call, char *err, size_t errlen)
{
    const char *m = virGetLastErrorMessage();
    snprintf(err, errlen, "%s: %s", call, m ? m : "unknown libvirt error");
    return ag_hv_error_is_fatal() ? 503 : 500;
}

/* A random password in the persistent definition of dom when it has none. */
static void persist_a_password(virDomainPtr dom)
{
    AUTOWIPE char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    ag_console c;
    if (!xml || ag_console_from_xml(xml, NULL, &c) < 0 || c.index < 0 || c.has_password) return;
    char pw[AG_CONSOLE_PASSWORD_MAX + 1];
    if (ag_random_alnum(pw, AG_CONSOLE_PASSWORD_MAX) < 0) return;
    AUTOWIPE char *g = ag_console_graphics_xml(xml, pw);
    explicit_bzero(pw, sizeof(pw));
    if (g && virDomainUpdateDeviceFlags(dom, g, VIR_DOMAIN_AFFECT_CONFIG) < 0) virResetLastError();
}

static json_t *console_result(int applied, const ag_console *c)
{
    json_t *r = applied ? json_pack("{s:b}", "applied", 1)
                        : json_pack("{s:b, s:s}", "applied", 0, "reason", AG_CONSOLE_TEST_DRIVER);
    if (r && c->port &&
        (json_object_set_new(r, "console_host", json_string(c->host)) < 0 ||
         json_object_set_new(r, "console_port", json_integer(c->port)) < 0)) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* desktop.console on a looked-up domain. */
static int console_on(virConnectPtr conn, virDomainPtr dom, const ag_console_req *q,
                      const char *fallback_host, json_t **result, char *err, size_t errlen)
{
    int active = virDomainIsActive(dom);
    if (active < 0) return lverr("virDomainIsActive", err, errlen);
    int st = VIR_DOMAIN_NOSTATE, reason;
    if (active && virDomainGetState(dom, &st, &reason, 0) < 0)
        return lverr("virDomainGetState", err, errlen);
    if (!active || st != VIR_DOMAIN_RUNNING) {
        snprintf(err, errlen, "domain is not running: %s", q->uuid);
        return 409;
    }
    AUTOWIPE char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE);
    if (!xml) return lverr("virDomainGetXMLDesc", err, errlen);
    ag_console c;
    int has = ag_console_from_xml(xml, fallback_host, &c);
    const char *drv = virConnectGetType(conn);
    if (drv && !strcasecmp(drv, "test")) {
        *result = console_result(0, &c);
        if (*result) return 200;
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    if (has < 0) {
        snprintf(err, errlen, "cannot read the XML of domain %s", q->uuid);
        return 500;
    }
    if (!has) {
        snprintf(err, errlen, "domain %s has no VNC websocket", q->uuid);
        return 409;
    }
    AUTOWIPE char *g = ag_console_graphics_xml(xml, q->password);
    if (!g) {
        snprintf(err, errlen, "out of memory");
        return 500;
    }
    if (virDomainUpdateDeviceFlags(dom, g, VIR_DOMAIN_AFFECT_LIVE) < 0) {
        int status = lverr("virDomainUpdateDeviceFlags", err, errlen);
        if (status == 500 && !c.has_password) {
            /* QEMU turns VNC passwords on only for a server started with one */
            persist_a_password(dom);
            snprintf(err, errlen,
                     "the VNC server of domain %s was started without a password: it takes one "
                     "from its next start",
                     q->uuid);
            return 409;
        }
        return status;
    }
    if (q->disconnect) {
        char why[256];
        if (ag_console_kick(dom, c.index, why, sizeof(why)) < 0) {
            snprintf(err, errlen, "cannot disconnect the console clients: %s", why);
            return 500;
        }
    }
    *result = console_result(1, &c);
    if (*result) return 200;
    snprintf(err, errlen, "out of memory");
    return 500;
}

int ag_console_call(virConnectPtr conn, const json_t *params, const char *fallback_host,
                    json_t **result, char *err, size_t errlen)
{
    *result = NULL;
    ag_console_req q;
    if (ag_console_params(params, &q, err, errlen) < 0) return 400;
    int status;
    if (!conn) {
        snprintf(err, errlen, "hypervisor connection is down");
        status = 503;
        goto out;
    }
    virDomainPtr dom = virDomainLookupByUUIDString(conn, q.uuid);
    if (!dom) {
        virErrorPtr e = virGetLastError();
        if (!e || e->code == VIR_ERR_NO_DOMAIN || e->code == VIR_ERR_INVALID_ARG) {
            snprintf(err, errlen, "domain not found: %s", q.uuid);
            status = 404;
        } else {
            status = lverr("virDomainLookupByUUIDString", err, errlen);
        }
        goto out;
    }
    status = console_on(conn, dom, &q, fallback_host, result, err, errlen);
    virDomainFree(dom);
out:
    explicit_bzero(q.password, sizeof(q.password));
    return status;
}
