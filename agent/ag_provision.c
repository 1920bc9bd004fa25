#include "ag_provision.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ag_console.h"
#include "ag_domains.h"
#include "ag_log.h"
#include "ag_sriov.h"
#include "ag_util.h"

#define GIB          (1024LL * 1024 * 1024)
#define JSON_INT_MAX ((1LL << 53) - 1) /* exact in any JSON reader */
#define API_PREFIX   "/api/v1/agent/"
#define BEARER_MAX   512
#define NAME_MAX_LEN 200 /* domain and volume names */

#define XP_DISK   "string(/domain/devices/disk[@device='disk'][1]/source/@file)"
#define XP_WS     "string(/domain/devices/graphics[@type='vnc'][1]/@websocket)"
#define XP_BACK   "string(/volume/backingStore/path)"
#define XP_TARGET "string(/pool/target/path)"

/* One task: what it runs against, and its one error. */
struct prov {
    const ag_exec_env *env;
    virConnectPtr conn;
    const ag_config *cfg;
    virStoragePoolPtr pool;
    char *err;
    size_t errlen;
    int lv; /* err holds a libvirt error */
};

/* Records the task's error (the first one wins: cleanups never hide it). Returns -1. */
__attribute__((format(printf, 2, 3))) static int perr(struct prov *p, const char *fmt, ...)
{
    if (*p->err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Records "<call>: <libvirt message>". Returns -1. */
static int plv(struct prov *p, const char *call)
{
    if (*p->err) return -1;
    const char *m = virGetLastErrorMessage();
    snprintf(p->err, p->errlen, "%s: %s", call, m ? m : "unknown libvirt error");
    p->lv = 1;
    return -1;
}

static int lv_code(void)
{
    virErrorPtr e = virGetLastError();
    return e ? e->code : VIR_ERR_OK;
}

/* ---- parameters ---- */

enum ptype {
    PT_INT,
    PT_BOOL,
    PT_UUID,
    PT_NAME,
    PT_ABSPATH,
    PT_VOLUME,
    PT_SHA256,
    PT_APIPATH,
    PT_NIC
};

struct param {
    const char *key;
    enum ptype type;
    long long min, max; /* PT_INT */
};

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int uuid_ok(const char *s)
{
    if (strlen(s) != 36) return 0;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !is_hex(s[i])) return 0;
    return 1;
}

/* 1..NAME_MAX_LEN bytes, no control character, no '/'. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > NAME_MAX_LEN) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/') return 0;
    return 1;
}

/* An absolute path of printable characters without "." or ".." segments. */
static int abspath_ok(const char *s)
{
    size_t n = strlen(s);
    if (s[0] != '/' || n > 1024) return 0;
    for (const char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) return 0;
        if (c[0] == '/' && c[1] == '.' && (c[2] == '/' || !c[2])) return 0;
        if (c[0] == '/' && c[1] == '.' && c[2] == '.' && (c[3] == '/' || !c[3])) return 0;
    }
    return 1;
}

/* A volume (and record file) name: [A-Za-z0-9._-], not starting with '.'. */
static int volume_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > NAME_MAX_LEN || s[0] == '.') return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int sha256_ok(const char *s)
{
    return strlen(s) == 64 && strspn(s, "0123456789abcdefABCDEF") == 64;
}

/* A plain URL path below API_PREFIX. */
static int apipath_ok(const char *s)
{
    return strlen(s) <= 512 && !strstr(s, "..") &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-~") ==
               strlen(s);
}

/* nic.<key> when present and not null, else NULL. */
static const json_t *nic_get(const json_t *nic, const char *key)
{
    const json_t *v = json_object_get(nic, key);
    return v && !json_is_null(v) ? v : NULL;
}

/*
 * params.nic (docs/agent-protocol.md, "desktop.create"): type virtio|sriov;
 * mac (a unicast MAC) and vlan (1..4094) for both; vf_pci, pf and vf_index,
 * all required, for sriov only, with mac. A null value counts as absent.
 */
static int nic_ok(struct prov *p, const json_t *nic)
{
    static const char *const keys[] = {"type", "vf_pci", "pf", "vf_index", "mac", "vlan"};
    if (!json_is_object(nic)) return perr(p, "params.nic must be an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)nic, k, v)
    {
        size_t i = 0;
        while (i < AG_NELEM(keys) && strcmp(k, keys[i]))
            i++;
        if (i == AG_NELEM(keys)) return perr(p, "unknown parameter 'nic.%.40s'", k);
    }
    const char *type = json_string_value(json_object_get(nic, "type"));
    if (!json_object_get(nic, "type")) return perr(p, "params.nic.type is required");
    if (!type || (strcmp(type, "virtio") && strcmp(type, "sriov")))
        return perr(p, "params.nic.type must be virtio or sriov");
    int sriov = !strcmp(type, "sriov");
    const json_t *vf = nic_get(nic, "vf_pci"), *pf = nic_get(nic, "pf");
    const json_t *idx = nic_get(nic, "vf_index"), *mac = nic_get(nic, "mac");
    const json_t *vlan = nic_get(nic, "vlan");
    unsigned char m[6];
    if (vf && !(json_is_string(vf) && ag_sriov_pci_ok(json_string_value(vf))))
        return perr(p, "params.nic.vf_pci must be a PCI address like 0000:3b:10.1");
    if (pf && !(json_is_string(pf) && ag_sriov_ifname_ok(json_string_value(pf))))
        return perr(p, "params.nic.pf must be an interface name (1..15 characters, no / or :)");
    if (idx && !(json_is_integer(idx) && json_integer_value(idx) >= 0 &&
                 json_integer_value(idx) < AG_SRIOV_VFS_MAX))
        return perr(p, "params.nic.vf_index must be an integer from 0 to %d", AG_SRIOV_VFS_MAX - 1);
    if (mac && !(json_is_string(mac) && ag_sriov_mac_parse(json_string_value(mac), m) == 0))
        return perr(p, "params.nic.mac must be a unicast MAC address like 52:54:00:12:34:56");
    if (vlan && !(json_is_integer(vlan) && json_integer_value(vlan) >= 1 &&
                  json_integer_value(vlan) <= 4094))
        return perr(p, "params.nic.vlan must be an integer from 1 to 4094");
    if (sriov) {
        const char *need = !vf ? "vf_pci" : !pf ? "pf" : !idx ? "vf_index" : !mac ? "mac" : NULL;
        if (need) return perr(p, "nic.type sriov needs nic.%s", need);
    } else {
        const char *only = vf ? "vf_pci" : pf ? "pf" : idx ? "vf_index" : NULL;
        if (only) return perr(p, "params.nic.%s is only for nic.type sriov", only);
    }
    return 0;
}

static const struct {
    int (*ok)(const char *s);
    const char *must;
} string_types[] = {
    [PT_UUID] = {uuid_ok, "be a UUID"},
    [PT_NAME] = {name_ok, "be 1..200 bytes without / or control characters"},
    [PT_ABSPATH] = {abspath_ok, "be an absolute path"},
    [PT_VOLUME] = {volume_ok,
                   "be a volume name (1..200 of A-Z a-z 0-9 . _ -, not starting with .)"},
    [PT_SHA256] = {sha256_ok, "be 64 hex digits"},
    [PT_APIPATH] = {apipath_ok, "be a plain URL path"},
};

static int param_ok(struct prov *p, const struct param *d, const json_t *v)
{
    if (d->type == PT_INT) {
        if (!json_is_integer(v) || json_integer_value(v) < d->min || json_integer_value(v) > d->max)
            return perr(p, "params.%s must be an integer from %lld to %lld", d->key, d->min,
                        d->max);
        return 0;
    }
    if (d->type == PT_BOOL)
        return json_is_boolean(v) ? 0 : perr(p, "params.%s must be true or false", d->key);
    if (d->type == PT_NIC) return nic_ok(p, v);
    const char *s = json_string_value(v);
    if (!s) return perr(p, "params.%s must be a string", d->key);
    if (d->type == PT_APIPATH && strncmp(s, API_PREFIX, strlen(API_PREFIX)))
        return perr(p, "params.%s must start with " API_PREFIX, d->key);
    if (!string_types[d->type].ok(s))
        return perr(p, "params.%s must %s", d->key, string_types[d->type].must);
    return 0;
}

/* params must be an object with exactly the keys of table t (all required), each valid. */
static int params_check(struct prov *p, const json_t *params, const struct param *t)
{
    if (!json_is_object(params)) return perr(p, "params must be an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        const struct param *d = t;
        while (d->key && strcmp(d->key, k))
            d++;
        if (!d->key) return perr(p, "unknown parameter '%.40s'", k);
    }
    for (; t->key; t++) {
        v = json_object_get(params, t->key);
        if (!v) return perr(p, "params.%s is required", t->key);
        if (param_ok(p, t, v) < 0) return -1;
    }
    return 0;
}

static const char *pstr(const json_t *params, const char *key)
{
    return json_string_value(json_object_get(params, key));
}

static long long pint(const json_t *params, const char *key)
{
    return json_integer_value(json_object_get(params, key));
}

static int pbool(const json_t *params, const char *key)
{
    return json_is_true(json_object_get(params, key));
}

#define P_UUID                                                                                     \
    {                                                                                              \
        "uuid", PT_UUID                                                                            \
    }
#define P_OVERLAY                                                                                  \
    {                                                                                              \
        "overlay", PT_VOLUME                                                                       \
    }
#define P_BASE                                                                                     \
    {                                                                                              \
        "base", PT_ABSPATH                                                                         \
    }
#define P_VCPUS                                                                                    \
    {                                                                                              \
        "vcpus", PT_INT, 1, AG_PROV_MAX_VCPUS                                                      \
    }
#define P_MEMORY                                                                                   \
    {                                                                                              \
        "memory_mib", PT_INT, 16, 16LL * 1024 * 1024                                               \
    }
#define P_DISK                                                                                     \
    {                                                                                              \
        "disk_gib", PT_INT, 1, 65536                                                               \
    }
#define P_START                                                                                    \
    {                                                                                              \
        "start", PT_BOOL                                                                           \
    }
#define P_VERSION_ID                                                                               \
    {                                                                                              \
        "version_id", PT_INT, 1, JSON_INT_MAX                                                      \
    }

static const struct param fetch_params[] = {
    P_VERSION_ID,          {"path", PT_APIPATH},
    {"sha256", PT_SHA256}, {"size", PT_INT, 1, JSON_INT_MAX},
    {"volume", PT_VOLUME}, {NULL},
};
static const struct param create_params[] = {
    P_UUID, {"name", PT_NAME}, P_VCPUS,         P_MEMORY, P_DISK,
    P_BASE, P_OVERLAY,         {"nic", PT_NIC}, P_START,  {NULL},
};
static const struct param refresh_params[] = {P_UUID, P_BASE, P_OVERLAY, P_DISK, P_START, {NULL}};
static const struct param delete_params[] = {P_UUID, P_OVERLAY, {NULL}};
static const struct param spec_params[] = {P_UUID, P_VCPUS, P_MEMORY, {NULL}};
static const struct param capture_params[] = {
    P_UUID, P_OVERLAY, P_VERSION_ID, {"upload_path", PT_APIPATH}, {NULL}};

/* ---- XML: every document the agent writes, and the few values it reads ---- */

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* fprintf for XML that escapes every %s argument. Takes only %s, %lld and %%. */
__attribute__((format(printf, 2, 3))) static void xml_put(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    for (const char *c = fmt; *c; c++) {
        if (*c != '%') {
            fputc(*c, f);
        } else if (c[1] == 's') {
            xml_escape(f, va_arg(ap, const char *));
            c++;
        } else if (!strncmp(c + 1, "lld", 3)) {
            fprintf(f, "%lld", va_arg(ap, long long));
            c += 3;
        } else {
            fputc('%', f);
            c += c[1] == '%';
        }
    }
    va_end(ap);
}

/* The text fill writes, as a new string; NULL when out of memory. */
static char *xml_build(void (*fill)(FILE *f, const void *arg), const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fill(f, arg);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void pool_fill(FILE *f, const void *arg)
{
    const ag_config *cfg = arg;
    xml_put(f,
            "<pool type='dir'>\n  <name>%s</name>\n  <target><path>%s</path></target>\n</pool>\n",
            cfg->storage_pool, cfg->image_dir);
}

struct vol_def {
    const char *name, *format;
    long long capacity;  /* bytes */
    const char *backing; /* qcow2 backing file, or NULL */
};

static void volume_fill(FILE *f, const void *arg)
{
    const struct vol_def *v = arg;
    xml_put(f,
            "<volume>\n  <name>%s</name>\n  <capacity unit='bytes'>%lld</capacity>\n"
            "  <allocation unit='bytes'>0</allocation>\n  <target><format type='%s'/></target>\n",
            v->name, v->capacity, v->format);
    if (v->backing)
        xml_put(f, "  <backingStore><path>%s</path><format type='qcow2'/></backingStore>\n",
                v->backing);
    fputs("</volume>\n", f);
}

struct dom_def {
    const char *type, *uuid, *name, *disk, *vnc_listen, *vnc_password;
    long long vcpus, max_vcpus, memory_mib;
    const char *nic_type, *vf_pci, *mac, *network, *bridge;
    long long vlan; /* 0: none */
};

/*
 * The NIC. An SR-IOV VF is a managed hostdev interface: libvirt binds the VF
 * to vfio-pci while the domain runs and programs <mac> and <vlan> into the VF
 * through its PF at every start. A virtio NIC joins cfg.bridge, else
 * cfg.network, else user-mode networking; its VLAN is not applied (libvirt 9
 * tags only on Open vSwitch bridges: the bridge itself must be on the VLAN).
 */
static void nic_fill(FILE *f, const struct dom_def *d)
{
    if (!strcmp(d->nic_type, "sriov")) {
        const char *a = d->vf_pci; /* checked: dddd:bb:ss.f */
        char dom[5], bus[3], slot[3];
        snprintf(dom, sizeof(dom), "%.4s", a);
        snprintf(bus, sizeof(bus), "%.2s", a + 5);
        snprintf(slot, sizeof(slot), "%.2s", a + 8);
        fputs("    <interface type='hostdev' managed='yes'>\n", f);
        if (d->mac) xml_put(f, "      <mac address='%s'/>\n", d->mac);
        xml_put(f,
                "      <source><address type='pci' domain='0x%s' bus='0x%s' slot='0x%s' "
                "function='0x%lld'/></source>\n",
                dom, bus, slot, (long long)(a[11] - '0'));
        if (d->vlan) xml_put(f, "      <vlan><tag id='%lld'/></vlan>\n", d->vlan);
        fputs("    </interface>\n", f);
        return;
    }
    if (*d->bridge)
        xml_put(f, "    <interface type='bridge'>\n      <source bridge='%s'/>\n", d->bridge);
    else if (*d->network)
        xml_put(f, "    <interface type='network'>\n      <source network='%s'/>\n", d->network);
    else
        fputs("    <interface type='user'>\n", f);
    if (d->mac) xml_put(f, "      <mac address='%s'/>\n", d->mac);
    fputs("      <model type='virtio'/>\n    </interface>\n", f);
}

static void domain_fill(FILE *f, const void *arg)
{
    const struct dom_def *d = arg;
    xml_put(f, "<domain type='%s'>\n  <name>%s</name>\n  <uuid>%s</uuid>\n", d->type, d->name,
            d->uuid);
    /* maximum = current memory: see docs/agent-protocol.md, desktop.set_spec */
    xml_put(f,
            "  <memory unit='MiB'>%lld</memory>\n  <currentMemory unit='MiB'>%lld</currentMemory>\n"
            "  <vcpu placement='static' current='%lld'>%lld</vcpu>\n",
            d->memory_mib, d->memory_mib, d->vcpus, d->max_vcpus);
    fputs("  <os><type>hvm</type><boot dev='hd'/></os>\n"
          "  <features><acpi/><apic/></features>\n",
          f);
    if (!strcmp(d->type, "kvm")) fputs("  <cpu mode='host-passthrough' check='none'/>\n", f);
    fputs("  <clock offset='utc'/>\n  <on_poweroff>destroy</on_poweroff>\n"
          "  <on_reboot>restart</on_reboot>\n  <on_crash>destroy</on_crash>\n  <devices>\n",
          f);
    xml_put(f,
            "    <disk type='file' device='disk'>\n"
            "      <driver name='qemu' type='qcow2' discard='unmap'/>\n"
            "      <source file='%s'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n",
            d->disk);
    nic_fill(f, d);
    fputs("    <input type='tablet' bus='usb'/>\n", f);
    /* a password from the start: QEMU turns VNC passwords on only for a server started with one */
    xml_put(f, "    <graphics type='vnc' listen='%s' autoport='yes' websocket='-1' passwd='%s'/>\n",
            d->vnc_listen, d->vnc_password);
    fputs("    <video><model type='vga'/></video>\n    <memballoon model='virtio'/>\n"
          "  </devices>\n</domain>\n",
          f);
}

/* The value of a string() XPath expression over xml: a new string ("" when absent), or NULL. */
static char *xpath_string(const char *xml, const char *expr)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) return NULL;
    char *out = NULL;
    xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    xmlXPathObjectPtr o = ctx ? xmlXPathEvalExpression((const xmlChar *)expr, ctx) : NULL;
    if (o && o->type == XPATH_STRING) out = strdup(o->stringval ? (const char *)o->stringval : "");
    xmlXPathFreeObject(o);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return out;
}

/* ---- hashing what streams by ---- */

struct hasher {
    EVP_MD_CTX *md;
    int fd;             /* the bytes are also written here when >= 0 */
    long long n, limit; /* bytes so far; more than limit (> 0) ends the transfer */
    int over;           /* ended because of limit */
    int write_errno;    /* ended because writing to fd failed */
};

static int hasher_init(struct hasher *h, int fd, long long limit)
{
    *h = (struct hasher){.fd = fd, .limit = limit, .md = EVP_MD_CTX_new()};
    if (h->md && EVP_DigestInit_ex(h->md, EVP_sha256(), NULL) == 1) return 0;
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
    return -1;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

static int hasher_put(struct hasher *h, const void *data, size_t len)
{
    if (h->limit && h->n + (long long)len > h->limit) {
        h->over = 1;
        return -1;
    }
    if (EVP_DigestUpdate(h->md, data, len) != 1) return -1;
    if (h->fd >= 0 && write_all(h->fd, data, len) < 0) {
        h->write_errno = errno;
        return -1;
    }
    h->n += (long long)len;
    return 0;
}

/* Ends the hash: hex gets 64 lowercase digits. Frees the context. */
static void hasher_end(struct hasher *h, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->md, d, &n) != 1) n = 0;
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", i < n ? d[i] : 0);
    EVP_MD_CTX_free(h->md);
    h->md = NULL;
}

static int http_sink(void *arg, const void *data, size_t len)
{
    return hasher_put(arg, data, len);
}

static int stream_sink(virStreamPtr st, const char *data, size_t len, void *arg)
{
    (void)st;
    return hasher_put(arg, data, len) < 0 ? -1 : (int)len;
}

static int stream_source(virStreamPtr st, char *data, size_t len, void *arg)
{
    (void)st;
    ssize_t n;
    do
        n = read(*(int *)arg, data, len);
    while (n < 0 && errno == EINTR);
    return (int)n;
}

/*
 * Removes the files of dir: an agent runs one task at a time, so any file there
 * is what a task left when the agent died (images are large).
 */
static void clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* A new file <state_dir>/downloads/<prefix>-XXXXXX: its fd (path set), or -1 with err. */
static int temp_file(struct prov *p, const char *prefix, char path[PATH_MAX])
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/downloads", p->cfg->state_dir);
    if (ag_mkdir_p(dir, 0700) < 0) return perr(p, "cannot create %s: %s", dir, strerror(errno));
    clear_dir(dir);
    int n = snprintf(path, PATH_MAX, "%s/%s-XXXXXX", dir, prefix);
    if (n < 0 || n >= PATH_MAX) return perr(p, "state_dir is too long");
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return perr(p, "cannot create a file in %s: %s", dir, strerror(errno));
    return fd;
}

/* ---- the storage pool and its volumes ---- */

static virStoragePoolPtr pool_define(struct prov *p)
{
    AG_AUTOFREE char *xml = xml_build(pool_fill, p->cfg);
    if (!xml) {
        perr(p, "out of memory");
        return NULL;
    }
    virStoragePoolPtr pool = virStoragePoolDefineXML(p->conn, xml, 0);
    if (!pool) {
        plv(p, "virStoragePoolDefineXML");
        return NULL;
    }
    if (virStoragePoolBuild(pool, 0) < 0)
        plv(p, "virStoragePoolBuild");
    else if (virStoragePoolCreate(pool, 0) < 0)
        plv(p, "virStoragePoolCreate");
    else if (virStoragePoolSetAutostart(pool, 1) < 0)
        plv(p, "virStoragePoolSetAutostart");
    else
        return pool;
    virStoragePoolUndefine(pool);
    virStoragePoolFree(pool);
    return NULL;
}

/* The pool cfg->storage_pool, defined and started when needed. New reference, or NULL. */
static virStoragePoolPtr pool_ensure(struct prov *p)
{
    virStoragePoolPtr pool = virStoragePoolLookupByName(p->conn, p->cfg->storage_pool);
    if (!pool) {
        if (lv_code() == VIR_ERR_NO_STORAGE_POOL) return pool_define(p);
        plv(p, "virStoragePoolLookupByName");
        return NULL;
    }
    int active = virStoragePoolIsActive(pool);
    if (active < 0) {
        plv(p, "virStoragePoolIsActive");
    } else if (active || virStoragePoolCreate(pool, 0) == 0) {
        return pool;
    } else {
        /* its directory may be gone: build it, then try again */
        if (virStoragePoolBuild(pool, 0) < 0)
            plv(p, "virStoragePoolBuild");
        else if (virStoragePoolCreate(pool, 0) < 0)
            plv(p, "virStoragePoolCreate");
        else
            return pool;
    }
    virStoragePoolFree(pool);
    return NULL;
}

/* Where volume name of the pool is (or would be): a new string, or NULL with err. */
static char *pool_vol_path(struct prov *p, const char *name)
{
    AG_AUTOFREE char *xml = virStoragePoolGetXMLDesc(p->pool, 0);
    if (!xml) {
        plv(p, "virStoragePoolGetXMLDesc");
        return NULL;
    }
    AG_AUTOFREE char *dir = xpath_string(xml, XP_TARGET);
    char *path = NULL;
    if (!dir || !*dir || asprintf(&path, "%s/%s", dir, name) < 0) {
        perr(p, "storage pool %s has no target path", p->cfg->storage_pool);
        return NULL;
    }
    return path;
}

/* Volume name of the pool: 0 with *vol, 1 when there is none (*vol NULL), or -1 with err. */
static int vol_find(struct prov *p, const char *name, virStorageVolPtr *vol)
{
    *vol = virStorageVolLookupByName(p->pool, name);
    if (*vol) return 0;
    if (lv_code() == VIR_ERR_NO_STORAGE_VOL) return 1;
    return plv(p, "virStorageVolLookupByName");
}

static char *vol_path(struct prov *p, virStorageVolPtr vol)
{
    char *s = virStorageVolGetPath(vol);
    if (!s) plv(p, "virStorageVolGetPath");
    return s;
}

/* vol's backing file: a new string ("" when it has none), or NULL with err. */
static char *vol_backing(struct prov *p, virStorageVolPtr vol)
{
    AG_AUTOFREE char *xml = virStorageVolGetXMLDesc(vol, 0);
    if (!xml) {
        plv(p, "virStorageVolGetXMLDesc");
        return NULL;
    }
    char *s = xpath_string(xml, XP_BACK);
    if (!s) perr(p, "cannot read the XML of volume %s", virStorageVolGetName(vol));
    return s;
}

/* Creates a volume (a copy of from when not NULL). New reference, or NULL with err. */
static virStorageVolPtr vol_create(struct prov *p, const struct vol_def *v, virStorageVolPtr from)
{
    AG_AUTOFREE char *xml = xml_build(volume_fill, v);
    if (!xml) {
        perr(p, "out of memory");
        return NULL;
    }
    virStorageVolPtr vol = from ? virStorageVolCreateXMLFrom(p->pool, xml, from, 0)
                                : virStorageVolCreateXML(p->pool, xml, 0);
    if (!vol) plv(p, from ? "virStorageVolCreateXMLFrom" : "virStorageVolCreateXML");
    return vol;
}

/* Deletes and releases *vol (NULL is fine); 0, or -1 with err. *vol becomes NULL. */
static int vol_drop(struct prov *p, virStorageVolPtr *vol)
{
    if (!*vol) return 0;
    int rc = virStorageVolDelete(*vol, 0) < 0 ? plv(p, "virStorageVolDelete") : 0;
    virStorageVolFree(*vol);
    *vol = NULL;
    return rc;
}

/* Streams the whole volume into h. 0, 1 when the driver cannot download, or -1 with err. */
static int vol_download(struct prov *p, virStorageVolPtr vol, struct hasher *h)
{
    virStreamPtr st = virStreamNew(p->conn, 0);
    if (!st) return plv(p, "virStreamNew");
    int rc = 0;
    if (virStorageVolDownload(vol, st, 0, 0, 0) < 0)
        rc = lv_code() == VIR_ERR_NO_SUPPORT ? 1 : plv(p, "virStorageVolDownload");
    else if (virStreamRecvAll(st, stream_sink, h) < 0) /* aborts the stream itself */
        rc = h->write_errno ? perr(p, "cannot write the download: %s", strerror(h->write_errno))
                            : plv(p, "virStreamRecvAll");
    else if (virStreamFinish(st) < 0)
        rc = plv(p, "virStreamFinish");
    virStreamFree(st);
    return rc;
}

/* Writes len bytes of fd into vol. 0, 1 when the driver cannot upload, or -1 with err. */
static int vol_upload(struct prov *p, virStorageVolPtr vol, int fd, long long len)
{
    virStreamPtr st = virStreamNew(p->conn, 0);
    if (!st) return plv(p, "virStreamNew");
    int rc = 0;
    if (virStorageVolUpload(vol, st, 0, (unsigned long long)len, 0) < 0)
        rc = lv_code() == VIR_ERR_NO_SUPPORT ? 1 : plv(p, "virStorageVolUpload");
    else if (virStreamSendAll(st, stream_source, &fd) < 0)
        rc = plv(p, "virStreamSendAll");
    else if (virStreamFinish(st) < 0)
        rc = plv(p, "virStreamFinish");
    virStreamFree(st);
    return rc;
}

/*
 * The base volume at path: it must be in our pool and no larger than disk_gib.
 * New reference, or NULL with err.
 */
static virStorageVolPtr base_find(struct prov *p, const char *path, long long disk_gib)
{
    virStorageVolPtr vol = virStorageVolLookupByPath(p->conn, path);
    if (!vol) {
        if (lv_code() == VIR_ERR_NO_STORAGE_VOL)
            perr(p, "base volume not found: %s", path);
        else
            plv(p, "virStorageVolLookupByPath");
        return NULL;
    }
    virStoragePoolPtr owner = virStoragePoolLookupByVolume(vol);
    const char *name = owner ? virStoragePoolGetName(owner) : NULL;
    virStorageVolInfo info;
    if (!name || strcmp(name, p->cfg->storage_pool))
        perr(p, "base volume %s is not in storage pool %s", path, p->cfg->storage_pool);
    else if (virStorageVolGetInfo(vol, &info) < 0)
        plv(p, "virStorageVolGetInfo");
    else if (info.capacity > (unsigned long long)disk_gib * GIB)
        perr(p, "disk_gib %lld is smaller than the base image (%llu bytes)", disk_gib,
             info.capacity);
    if (owner) virStoragePoolFree(owner);
    if (!*p->err) return vol;
    virStorageVolFree(vol);
    return NULL;
}

static virStorageVolPtr overlay_create(struct prov *p, const char *name, const char *base,
                                       long long disk_gib)
{
    struct vol_def v = {name, "qcow2", disk_gib * GIB, base};
    return vol_create(p, &v, NULL);
}

/* ---- domains ---- */

/* 0 with *dom, 1 when there is no domain uuid (*dom NULL), or -1 with err. */
static int dom_find(struct prov *p, const char *uuid, virDomainPtr *dom)
{
    *dom = virDomainLookupByUUIDString(p->conn, uuid);
    if (*dom) return 0;
    if (lv_code() == VIR_ERR_NO_DOMAIN) return 1;
    return plv(p, "virDomainLookupByUUIDString");
}

static int dom_need(struct prov *p, const char *uuid, virDomainPtr *dom)
{
    int r = dom_find(p, uuid, dom);
    return r == 1 ? perr(p, "domain not found: %s", uuid) : r;
}

/* 0 when dom's persistent definition has its disk on path, 1 when not (*disk: what it uses), -1. */
static int dom_uses(struct prov *p, virDomainPtr dom, const char *path, char **disk)
{
    AG_AUTOFREE char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
    if (!xml) return plv(p, "virDomainGetXMLDesc");
    *disk = xpath_string(xml, XP_DISK);
    if (!*disk) return perr(p, "cannot read the XML of domain %s", virDomainGetName(dom));
    return strcmp(*disk, path) ? 1 : 0;
}

static int dom_state(virDomainPtr dom)
{
    int st = VIR_DOMAIN_NOSTATE, reason;
    if (virDomainGetState(dom, &st, &reason, 0) < 0) st = VIR_DOMAIN_NOSTATE;
    return st;
}

/*
 * Where a new domain's VNC server (and its websocket) listens: vnc_listen, except that a
 * wildcard (0.0.0.0, ::, empty) becomes the management address, the host of the listen URL
 * (docs/security.md): a console is never reachable on the desktops' own networks.
 */
static const char *vnc_listen_address(const struct prov *p)
{
    const char *l = p->cfg->vnc_listen;
    bool wild = !*l || !strcmp(l, "0.0.0.0") || !strcmp(l, "::") || !strcmp(l, "[::]");
    const char *m = p->env ? p->env->mgmt_host : NULL;
    return wild && m && *m ? m : l;
}

/* The VNC websocket port of a running domain (live XML), or JSON null. */
static json_t *dom_websocket(virDomainPtr dom)
{
    AG_AUTOFREE char *xml = virDomainGetXMLDesc(dom, 0);
    AG_AUTOFREE char *ws = xml ? xpath_string(xml, XP_WS) : NULL;
    long port = ws ? strtol(ws, NULL, 10) : 0;
    return port > 0 && port < 65536 ? json_integer(port) : json_null();
}

static int dom_start(struct prov *p, virDomainPtr dom)
{
    int active = virDomainIsActive(dom);
    if (active < 0) return plv(p, "virDomainIsActive");
    if (!active && virDomainCreate(dom) < 0) return plv(p, "virDomainCreate");
    return 0;
}

static int dom_force_off(struct prov *p, virDomainPtr dom)
{
    int active = virDomainIsActive(dom);
    if (active < 0) return plv(p, "virDomainIsActive");
    if (active && virDomainDestroy(dom) < 0) return plv(p, "virDomainDestroy");
    return 0;
}

/* Undefines dom with its managed save, snapshot metadata and NVRAM, as far as the driver can. */
static int dom_undefine(struct prov *p, virDomainPtr dom)
{
    static const unsigned flags[] = {
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
            VIR_DOMAIN_UNDEFINE_NVRAM,
        VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA,
    };
    for (size_t i = 0; i < AG_NELEM(flags); i++) {
        if (virDomainUndefineFlags(dom, flags[i]) == 0) return 0;
        if (lv_code() != VIR_ERR_INVALID_ARG && lv_code() != VIR_ERR_NO_SUPPORT)
            return plv(p, "virDomainUndefineFlags");
    }
    return virDomainUndefine(dom) < 0 ? plv(p, "virDomainUndefine") : 0;
}

const char *ag_provision_domain_type(virConnectPtr conn, const ag_config *cfg)
{
    static const char *const fixed[] = {"kvm", "qemu", "test"};
    for (size_t i = 0; i < AG_NELEM(fixed); i++)
        if (!strcmp(cfg->domain_type, fixed[i])) return fixed[i];
    const char *drv = conn ? virConnectGetType(conn) : NULL;
    if (drv && !strcasecmp(drv, "test")) return "test";
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) return "qemu";
    close(fd);
    return "kvm";
}

/* The domain XML of desktop.create (params checked): a new string, or NULL with err. */
static char *dom_xml_build(struct prov *p, const json_t *params, const char *disk)
{
    const json_t *nic = json_object_get(params, "nic");
    long long vcpus = pint(params, "vcpus");
    /* nobody knows it: desktop.console sets the one a client gets */
    char vnc_password[AG_CONSOLE_PASSWORD_MAX + 1];
    if (ag_random_alnum(vnc_password, AG_CONSOLE_PASSWORD_MAX) < 0) {
        perr(p, "cannot make a VNC password: %s", strerror(errno));
        return NULL;
    }
    struct dom_def d = {
        .type = ag_provision_domain_type(p->conn, p->cfg),
        .uuid = pstr(params, "uuid"),
        .name = pstr(params, "name"),
        .disk = disk,
        .vnc_listen = vnc_listen_address(p),
        .vnc_password = vnc_password,
        .vcpus = vcpus,
        .max_vcpus = vcpus > AG_PROV_MIN_VCPUS ? vcpus : AG_PROV_MIN_VCPUS,
        .memory_mib = pint(params, "memory_mib"),
        .nic_type = pstr(nic, "type"),
        .vf_pci = pstr(nic, "vf_pci"),
        .mac = pstr(nic, "mac"),
        .network = p->cfg->network,
        .bridge = p->cfg->bridge,
        .vlan = json_integer_value(json_object_get(nic, "vlan")),
    };
    char *xml = xml_build(domain_fill, &d);
    explicit_bzero(vnc_password, sizeof(vnc_password));
    if (!xml) perr(p, "out of memory");
    return xml;
}

static virDomainPtr dom_define(struct prov *p, const json_t *params, const char *disk)
{
    AG_AUTOFREE char *xml = dom_xml_build(p, params, disk);
    if (!xml) return NULL;
    virDomainPtr dom = virDomainDefineXML(p->conn, xml);
    explicit_bzero(xml, strlen(xml));
    if (!dom) plv(p, "virDomainDefineXML");
    return dom;
}

/* ---- CCC ---- */

static int bearer_get(struct prov *p, char buf[BEARER_MAX])
{
    if (p->env->bearer(p->env->arg, buf, BEARER_MAX) < 0)
        return perr(p, "the agent has no credential for CCC yet");
    return 0;
}

/* ---- image.fetch ---- */

struct fetch {
    const char *path, *sha256, *volume;
    long long size, version_id;
    char rec[PATH_MAX]; /* <state_dir>/images/<volume>.json */
    char verified[16];
};

/* 1 when the record says the volume holds this image (f->verified set), else 0. */
static int record_matches(struct fetch *f)
{
    AG_AUTOFREE char *text = ag_file_read(f->rec, 4096, NULL);
    AG_AUTOJSON json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    const char *sha = json_string_value(json_object_get(j, "sha256"));
    const char *ver = json_string_value(json_object_get(j, "verified"));
    if (!sha || !ver || strcasecmp(sha, f->sha256) ||
        json_integer_value(json_object_get(j, "size")) != f->size)
        return 0;
    snprintf(f->verified, sizeof(f->verified), "%s", ver);
    return 1;
}

static int record_write(struct prov *p, const struct fetch *f, const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/images", p->cfg->state_dir);
    if (ag_mkdir_p(dir, 0700) < 0) return perr(p, "cannot create %s: %s", dir, strerror(errno));
    AG_AUTOJSON json_t *j =
        json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "volume", f->volume, "path", path, "sha256",
                  f->sha256, "size", (json_int_t)f->size, "version_id", (json_int_t)f->version_id,
                  "verified", f->verified);
    if (!j || ag_json_write_atomic(f->rec, j) < 0)
        return perr(p, "cannot write %s: %s", f->rec, strerror(errno));
    return 0;
}

/* GETs the image from CCC into fd, hashing it; it must be exactly f->size bytes and f->sha256. */
static int download_image(struct prov *p, const struct fetch *f, int fd)
{
    struct hasher h;
    char bearer[BEARER_MAX], herr[512] = "", hex[65];
    if (hasher_init(&h, fd, f->size) < 0) return perr(p, "out of memory");
    int status = -1;
    if (bearer_get(p, bearer) == 0) {
        status =
            ag_http_get_stream(p->env->http, f->path, bearer, http_sink, &h, herr, sizeof(herr));
        explicit_bzero(bearer, sizeof(bearer));
    }
    hasher_end(&h, hex);
    if (*p->err) return -1;
    if (h.over)
        return perr(p, "sha256 mismatch: expected %s (%lld bytes), got more than %lld bytes",
                    f->sha256, f->size, f->size);
    if (h.write_errno) return perr(p, "cannot write the download: %s", strerror(h.write_errno));
    if (status != 200) return perr(p, "%s", *herr ? herr : "the download failed");
    if (h.n != f->size || strcasecmp(hex, f->sha256))
        return perr(p, "sha256 mismatch: expected %s (%lld bytes), got %s (%lld bytes)", f->sha256,
                    f->size, hex, h.n);
    return 0;
}

/* Hashes the volume's bytes as the pool holds them: they must be the image. */
static int verify_content(struct prov *p, struct fetch *f, virStorageVolPtr vol)
{
    struct hasher h;
    char hex[65];
    if (hasher_init(&h, -1, 0) < 0) return perr(p, "out of memory");
    int r = vol_download(p, vol, &h);
    hasher_end(&h, hex);
    if (r < 0) return -1;
    if (r == 1) return perr(p, "the driver took the upload but cannot download the volume");
    if (h.n != f->size || strcasecmp(hex, f->sha256))
        return perr(p, "volume %s holds sha256 %s (%lld bytes) after the upload, expected %s",
                    f->volume, hex, h.n, f->sha256);
    snprintf(f->verified, sizeof(f->verified), "content");
    return 0;
}

/*
 * Creates the volume (raw, capacity = size: a dir pool then holds the uploaded
 * qcow2 file byte for byte, and a refresh makes libvirt see it as qcow2) and
 * uploads fd into it. Drivers without upload keep the volume from the XML.
 */
static int fill_volume(struct prov *p, struct fetch *f, int fd, virStorageVolPtr *vol)
{
    struct vol_def v = {f->volume, "raw", f->size, NULL};
    if (!(*vol = vol_create(p, &v, NULL))) return -1;
    if (lseek(fd, 0, SEEK_SET) < 0) return perr(p, "lseek: %s", strerror(errno));
    int r = vol_upload(p, *vol, fd, f->size);
    if (r < 0) return -1;
    if (r == 1) {
        snprintf(f->verified, sizeof(f->verified), "download");
        return 0;
    }
    if (virStoragePoolRefresh(p->pool, 0) < 0) return plv(p, "virStoragePoolRefresh");
    return verify_content(p, f, *vol);
}

/* Fetches the image into a new volume: 0 with *vol, or -1 with nothing left behind. */
static int fetch_new(struct prov *p, struct fetch *f, virStorageVolPtr *vol)
{
    char tmp[PATH_MAX];
    int fd = temp_file(p, "fetch", tmp);
    if (fd < 0) return -1;
    int rc = download_image(p, f, fd);
    if (rc == 0) rc = fill_volume(p, f, fd, vol);
    close(fd);
    unlink(tmp);
    AG_AUTOFREE char *path = rc == 0 ? vol_path(p, *vol) : NULL;
    if (rc == 0 && (!path || record_write(p, f, path) < 0)) rc = -1;
    if (rc < 0) vol_drop(p, vol);
    return rc;
}

static int image_fetch(struct prov *p, const json_t *params, json_t **result)
{
    struct fetch f = {pstr(params, "path"), pstr(params, "sha256"), pstr(params, "volume"),
                      pint(params, "size"), pint(params, "version_id")};
    snprintf(f.rec, sizeof(f.rec), "%s/images/%s.json", p->cfg->state_dir, f.volume);
    virStorageVolPtr vol = NULL;
    int r = vol_find(p, f.volume, &vol);
    int changed = r == 1 || (r == 0 && !record_matches(&f));
    if (r >= 0 && changed) {
        /* a volume without a matching record is the rest of an interrupted fetch */
        unlink(f.rec);
        r = vol_drop(p, &vol) < 0 ? -1 : fetch_new(p, &f, &vol);
    }
    AG_AUTOFREE char *path = r >= 0 ? vol_path(p, vol) : NULL;
    if (path)
        *result = json_pack("{s:s, s:s, s:I, s:s, s:b}", "volume", path, "sha256", f.sha256, "size",
                            (json_int_t)f.size, "verified", f.verified, "changed", changed);
    if (vol) virStorageVolFree(vol);
    return path ? 0 : -1;
}

/* ---- desktop.create ---- */

/*
 * The overlay: the existing volume when it is on base (or, for an existing
 * domain, whatever it is on), else a new one (*made = 1). 0, or -1 with err.
 */
static int overlay_ensure(struct prov *p, const json_t *params, int have_dom, virStorageVolPtr *ov,
                          int *made)
{
    const char *name = pstr(params, "overlay"), *base = pstr(params, "base");
    int r = vol_find(p, name, ov);
    if (r < 0) return -1;
    if (r == 1) {
        *ov = overlay_create(p, name, base, pint(params, "disk_gib"));
        *made = *ov != NULL;
        return *ov ? 0 : -1;
    }
    if (have_dom) return 0;
    AG_AUTOFREE char *backing = vol_backing(p, *ov);
    if (!backing) return -1;
    if (strcmp(backing, base))
        return perr(p, "volume %s already exists on another base (%s)", name, backing);
    return 0;
}

static json_t *desktop_json(virDomainPtr dom, const char *uuid, const char *volume, int changed,
                            const json_t *nic, const char *vf_config)
{
    int st = dom_state(dom);
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:{s:s, s:s?, s:s}}", "uuid", uuid, "volume",
                     volume, "state", ag_dom_state_name(st), "changed", changed, "vnc_websocket",
                     st == VIR_DOMAIN_RUNNING ? dom_websocket(dom) : json_null(), "nic", "type",
                     pstr(nic, "type"), "vf_pci", pstr(nic, "vf_pci"), "vf_config", vf_config);
}

/*
 * Before a VF desktop is defined: the VF must be VF vf_index of pf on this
 * server (discovery below root_prefix, never what CCC believes), and with
 * sriov_netlink on, the VF gets the desktop's MAC and VLAN (0: none, which
 * clears the VLAN of the VF's previous desktop). *vf_config: "netlink" or
 * "skipped". 0, or -1 with err.
 */
static int vf_prepare(struct prov *p, const json_t *nic, const char **vf_config)
{
    *vf_config = "skipped";
    if (strcmp(pstr(nic, "type"), "sriov")) return 0;
    const char *pf = pstr(nic, "pf"), *vf_pci = pstr(nic, "vf_pci");
    int index = (int)pint(nic, "vf_index"), vlan = (int)pint(nic, "vlan");
    char why[512];
    if (ag_sriov_vf_check(p->cfg->root_prefix, pf, index, vf_pci, why, sizeof(why)) < 0)
        return perr(p, "%s", why);
    if (!ag_config_sriov_netlink(p->cfg)) return 0;
    unsigned char mac[6];
    if (ag_sriov_mac_parse(pstr(nic, "mac"), mac) < 0) return perr(p, "params.nic.mac is bad");
    if (ag_sriov_vf_set(pf, index, mac, vlan, why, sizeof(why)) < 0) return perr(p, "%s", why);
    AG_INFO("%s VF %d (%s): MAC %s, VLAN %d set through rtnetlink", pf, index, vf_pci,
            pstr(nic, "mac"), vlan);
    *vf_config = "netlink";
    return 0;
}

static int desktop_create(struct prov *p, const json_t *params, json_t **result)
{
    const char *uuid = pstr(params, "uuid");
    virStorageVolPtr base = NULL, ov = NULL;
    virDomainPtr dom = NULL;
    AG_AUTOFREE char *want = NULL, *disk = NULL;
    int made_vol = 0, made_dom = 0, rc = -1;
    if (!(base = base_find(p, pstr(params, "base"), pint(params, "disk_gib")))) goto out;
    if (!(want = pool_vol_path(p, pstr(params, "overlay")))) goto out;
    if (dom_find(p, uuid, &dom) < 0) goto out;
    if (dom && dom_uses(p, dom, want, &disk) != 0) {
        perr(p, "domain %s already exists with another disk (%s)", uuid, disk ? disk : "?");
        goto out;
    }
    /* the VF is checked (and set up) before anything is made; an existing domain keeps its own */
    const json_t *nic = json_object_get(params, "nic");
    const char *vf_config = "skipped";
    if (!dom && vf_prepare(p, nic, &vf_config) < 0) goto out;
    if (overlay_ensure(p, params, dom != NULL, &ov, &made_vol) < 0) goto fail;
    if (!dom) {
        if (!(dom = dom_define(p, params, want))) goto fail;
        made_dom = 1;
    }
    if (pbool(params, "start") && dom_start(p, dom) < 0) goto fail;
    *result = desktop_json(dom, uuid, want, made_vol || made_dom, nic, vf_config);
    rc = 0;
    goto out;
fail:
    /* no half-made desktops: take back what this task made */
    if (made_dom) dom_undefine(p, dom);
    if (made_vol) vol_drop(p, &ov);
out:
    if (dom) virDomainFree(dom);
    if (ov) virStorageVolFree(ov);
    if (base) virStorageVolFree(base);
    return rc;
}

/* ---- desktop.refresh ---- */

static int desktop_refresh(struct prov *p, const json_t *params, json_t **result)
{
    const char *uuid = pstr(params, "uuid"), *name = pstr(params, "overlay");
    virStorageVolPtr base = NULL, ov = NULL;
    virDomainPtr dom = NULL;
    AG_AUTOFREE char *want = NULL, *disk = NULL;
    int rc = -1;
    if (dom_need(p, uuid, &dom) < 0) goto out;
    if (!(base = base_find(p, pstr(params, "base"), pint(params, "disk_gib")))) goto out;
    if (!(want = pool_vol_path(p, name))) goto out;
    int r = dom_uses(p, dom, want, &disk);
    if (r != 0) {
        perr(p, "domain %s does not use volume %s (its disk is %s)", uuid, name, disk ? disk : "?");
        goto out;
    }
    if (dom_force_off(p, dom) < 0 || vol_find(p, name, &ov) < 0 || vol_drop(p, &ov) < 0) goto out;
    if (!(ov = overlay_create(p, name, pstr(params, "base"), pint(params, "disk_gib")))) goto out;
    if (pbool(params, "start") && dom_start(p, dom) < 0) goto out;
    *result = json_pack("{s:s, s:s, s:b}", "state", ag_dom_state_name(dom_state(dom)), "volume",
                        want, "changed", 1);
    rc = 0;
out:
    if (dom) virDomainFree(dom);
    if (ov) virStorageVolFree(ov);
    if (base) virStorageVolFree(base);
    return rc;
}

/* ---- desktop.delete ---- */

static int desktop_delete(struct prov *p, const json_t *params, json_t **result)
{
    virDomainPtr dom = NULL;
    virStorageVolPtr ov = NULL;
    int r = dom_find(p, pstr(params, "uuid"), &dom);
    if (r < 0) return -1;
    int changed = r == 0;
    if (dom) {
        r = dom_force_off(p, dom) < 0 || dom_undefine(p, dom) < 0 ? -1 : 0;
        virDomainFree(dom);
        if (r < 0) return -1;
    }
    r = vol_find(p, pstr(params, "overlay"), &ov);
    if (r < 0) return -1;
    changed |= r == 0;
    if (vol_drop(p, &ov) < 0) return -1;
    *result = json_pack("{s:b}", "changed", changed);
    return 0;
}

/* ---- desktop.set_spec ---- */

/* The persistent definition gets vcpus (maximum raised when needed) and memory as maximum and
 * current. */
static int spec_config(struct prov *p, virDomainPtr dom, unsigned vcpus, unsigned long kib)
{
    const unsigned cfg = VIR_DOMAIN_AFFECT_CONFIG;
    int max = virDomainGetVcpusFlags(dom, cfg | VIR_DOMAIN_VCPU_MAXIMUM);
    if (max < 0) return plv(p, "virDomainGetVcpusFlags");
    if ((unsigned)max < vcpus &&
        virDomainSetVcpusFlags(dom, vcpus, cfg | VIR_DOMAIN_VCPU_MAXIMUM) < 0)
        return plv(p, "virDomainSetVcpusFlags");
    if (virDomainSetVcpusFlags(dom, vcpus, cfg) < 0) return plv(p, "virDomainSetVcpusFlags");
    /* setting the maximum lowers a larger current memory with it; raising needs it first */
    if (virDomainSetMemoryFlags(dom, kib, cfg | VIR_DOMAIN_MEM_MAXIMUM) < 0 ||
        virDomainSetMemoryFlags(dom, kib, cfg) < 0)
        return plv(p, "virDomainSetMemoryFlags");
    return 0;
}

/* Applies the values to the running domain where it can: 1 when both hold now, else 0. */
static int spec_live(virDomainPtr dom, unsigned vcpus, unsigned long kib)
{
    const unsigned live = VIR_DOMAIN_AFFECT_LIVE;
    int cur = virDomainGetVcpusFlags(dom, live);
    int max = virDomainGetVcpusFlags(dom, live | VIR_DOMAIN_VCPU_MAXIMUM);
    int cpus_ok =
        cur == (int)vcpus || (max >= (int)vcpus && virDomainSetVcpusFlags(dom, vcpus, live) == 0);
    virDomainInfo info;
    int mem_ok = virDomainGetInfo(dom, &info) == 0 &&
                 (info.memory == kib ||
                  (info.maxMem >= kib && virDomainSetMemoryFlags(dom, kib, live) == 0));
    virResetLastError(); /* not applied live: the next boot has it, no failure */
    return cpus_ok && mem_ok;
}

static int desktop_set_spec(struct prov *p, const json_t *params, json_t **result)
{
    virDomainPtr dom = NULL;
    if (dom_need(p, pstr(params, "uuid"), &dom) < 0) return -1;
    unsigned vcpus = (unsigned)pint(params, "vcpus");
    unsigned long kib = (unsigned long)pint(params, "memory_mib") * 1024;
    int rc = spec_config(p, dom, vcpus, kib);
    int active = rc == 0 ? virDomainIsActive(dom) : 0;
    if (active < 0) rc = plv(p, "virDomainIsActive");
    int live = active > 0 && spec_live(dom, vcpus, kib);
    if (rc == 0)
        *result = json_pack("{s:I, s:I, s:b, s:b}", "vcpus", (json_int_t)vcpus, "memory_mib",
                            (json_int_t)pint(params, "memory_mib"), "live", live, "pending_restart",
                            active > 0 && !live);
    virDomainFree(dom);
    return rc;
}

/* ---- desktop.capture ---- */

/* A standalone qcow2 copy of ov (its backing chain folded in) named name. New reference, or NULL.
 */
static virStorageVolPtr flat_copy(struct prov *p, virStorageVolPtr ov, const char *name)
{
    virStorageVolPtr old = NULL;
    if (vol_find(p, name, &old) < 0 || vol_drop(p, &old) < 0) return NULL;
    virStorageVolInfo info;
    if (virStorageVolGetInfo(ov, &info) < 0) {
        plv(p, "virStorageVolGetInfo");
        return NULL;
    }
    struct vol_def v = {name, "qcow2", (long long)info.capacity, NULL};
    virStorageVolPtr copy = vol_create(p, &v, ov);
    AG_AUTOFREE char *backing = copy ? vol_backing(p, copy) : NULL;
    if (backing && !*backing) return copy;
    if (backing) perr(p, "the copy of the desktop still has a backing file (%s)", backing);
    vol_drop(p, &copy);
    return NULL;
}

/* PUTs fd (size bytes, sha256 hex) to CCC's upload_path. */
static int upload(struct prov *p, const char *path, int fd, long long size, const char *hex)
{
    char bearer[BEARER_MAX], herr[512] = "", sha[96];
    if (lseek(fd, 0, SEEK_SET) < 0) return perr(p, "lseek: %s", strerror(errno));
    if (bearer_get(p, bearer) < 0) return -1;
    snprintf(sha, sizeof(sha), "X-BIC-SHA256: %s", hex);
    const char *headers[] = {sha, NULL};
    int status = ag_http_put_fd(p->env->http, path, bearer, fd, size, headers, herr, sizeof(herr));
    explicit_bzero(bearer, sizeof(bearer));
    if (status < 200 || status >= 300) return perr(p, "%s", *herr ? herr : "the upload failed");
    return 0;
}

/* Streams copy into a temporary file while hashing it, then sends that file to CCC. */
static int capture_send(struct prov *p, virStorageVolPtr copy, const char *upload_path,
                        json_t **result)
{
    char tmp[PATH_MAX], hex[65];
    int fd = temp_file(p, "capture", tmp);
    if (fd < 0) return -1;
    struct hasher h;
    int rc = hasher_init(&h, fd, 0) < 0 ? perr(p, "out of memory") : vol_download(p, copy, &h);
    if (h.md) hasher_end(&h, hex);
    if (rc == 1) rc = perr(p, AG_PROV_CAPTURE_NO);
    if (rc == 0) rc = upload(p, upload_path, fd, h.n, hex);
    close(fd);
    unlink(tmp);
    if (rc == 0) *result = json_pack("{s:s, s:I}", "sha256", hex, "size", (json_int_t)h.n);
    return rc;
}

static int desktop_capture(struct prov *p, const json_t *params, json_t **result)
{
    const char *uuid = pstr(params, "uuid"), *name = pstr(params, "overlay");
    virDomainPtr dom = NULL;
    virStorageVolPtr ov = NULL, copy = NULL;
    if (dom_need(p, uuid, &dom) < 0) return -1;
    int active = virDomainIsActive(dom);
    virDomainFree(dom);
    if (active < 0) return plv(p, "virDomainIsActive");
    if (active) return perr(p, "the desktop must be shut off to capture it");
    int r = vol_find(p, name, &ov);
    if (r == 1) return perr(p, "volume not found: %s", name);
    if (r < 0) return -1;
    char copy_name[64];
    snprintf(copy_name, sizeof(copy_name), "bic-capture-%lld.qcow2", pint(params, "version_id"));
    copy = flat_copy(p, ov, copy_name);
    virStorageVolFree(ov);
    int rc = copy ? capture_send(p, copy, pstr(params, "upload_path"), result) : -1;
    vol_drop(p, &copy);
    return rc;
}

/* ---- dispatch ---- */

static const struct task {
    const char *type;
    const struct param *params;
    int (*run)(struct prov *p, const json_t *params, json_t **result);
    int needs_ccc;
} tasks[] = {
    {"image.fetch", fetch_params, image_fetch, 1},
    {"desktop.create", create_params, desktop_create, 0},
    {"desktop.refresh", refresh_params, desktop_refresh, 0},
    {"desktop.delete", delete_params, desktop_delete, 0},
    {"desktop.set_spec", spec_params, desktop_set_spec, 0},
    {"desktop.capture", capture_params, desktop_capture, 1},
};

int ag_provision_task(const ag_exec_env *env, const char *type, const json_t *params,
                      json_t **result, char *err, size_t errlen)
{
    const struct task *t = NULL;
    for (size_t i = 0; i < AG_NELEM(tasks) && !t; i++)
        if (!strcmp(type, tasks[i].type)) t = &tasks[i];
    if (!t) return AG_PROV_NOT_MINE;
    *result = NULL;
    *err = '\0';
    struct prov p = {env, env->conn, env->cfg, NULL, err, errlen, 0};
    int rc = params_check(&p, params, t->params);
    if (rc == 0 && !p.conn) rc = perr(&p, "hypervisor connection is down");
    if (rc == 0 && !p.cfg) rc = perr(&p, "%s needs the agent's configuration", type);
    if (rc == 0 && t->needs_ccc && (!env->http || !env->bearer))
        rc = perr(&p, "%s needs a connection to CCC", type);
    if (rc == 0 && !(p.pool = pool_ensure(&p))) rc = -1;
    if (rc == 0) rc = t->run(&p, params, result);
    if (rc == 0 && !*result) rc = perr(&p, "out of memory");
    if (p.pool) virStoragePoolFree(p.pool);
    if (rc < 0) {
        json_decref(*result);
        *result = NULL;
        if (!*err) snprintf(err, errlen, "%s failed", type);
        /* only a libvirt failure may tell the caller that the connection is gone */
        if (!p.lv) virResetLastError();
    }
    return rc < 0 ? -1 : 0;
}

char *ag_provision_domain_xml(virConnectPtr conn, const ag_config *cfg, const json_t *params,
                              const char *disk, char *err, size_t errlen)
{
    *err = '\0';
    struct prov p = {NULL, conn, cfg, NULL, err, errlen, 0};
    if (params_check(&p, params, create_params) < 0) return NULL;
    return dom_xml_build(&p, params, disk);
}
