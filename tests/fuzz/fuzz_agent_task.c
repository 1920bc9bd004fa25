/*
 * fuzz_agent_task - bic-agent's side of a task or call that CCC pushes to the listener:
 * the listener's path routing (ag_listener_route), the verification of a signed body
 * (ag_verify_task/ag_verify_call: signature, shape, server, time window, nonce), and
 * what an accepted body then reaches without a hypervisor: the parameter checks of
 * every task and call type (ag_exec_task, ag_exec_call) and the domain XML that
 * desktop.create would define (ag_provision_domain_xml).
 *
 * Input, by its first byte:
 *   'T' / 'C'  the rest is a task / call body; the target signs it with its own CCC key,
 *              so everything after the signature check is reached;
 *   'S'        the rest is "<X-BIC-Signature>\n<body>", checked as sent;
 *   'P'        the second byte is the number of routes (mod 4), the rest a request path.
 * Aborts (besides ASan/UBSan) when an unsigned or wrongly signed body is accepted, an
 * accepted one breaks the rules (server, time window, ids, type, params not an object),
 * a replayed nonce is accepted, a task or call runs without a hypervisor, the domain XML
 * is not well-formed or does not name the desktop's name and uuid exactly, or a routed
 * path is not the one spelling of its route.
 */
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "ag_config.h"
#include "ag_exec.h"
#include "ag_listener.h"
#include "ag_provision.h"
#include "ag_verify.h"
#include "fuzz_common.h"

#define SERVER_ID 7
#define NOW       1790000000LL

static EVP_PKEY *ccc;
static unsigned char pub[AG_SIG_KEY_LEN];
static ag_config cfg;

static void init(void)
{
    if (ccc) return;
    EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (!kc || EVP_PKEY_keygen_init(kc) <= 0 || EVP_PKEY_keygen(kc, &ccc) <= 0) abort();
    EVP_PKEY_CTX_free(kc);
    size_t n = sizeof(pub);
    if (EVP_PKEY_get_raw_public_key(ccc, pub, &n) <= 0 || n != sizeof(pub)) abort();
    char err[256];
    if (ag_config_load(&cfg, NULL, err, sizeof(err)) < 0) abort();
    if (ag_config_set(&cfg, "domain_type", "qemu") < 0) abort();
    xmlInitParser();
}

static char *sign(const char *body, size_t len)
{
    unsigned char sig[AG_SIG_LEN];
    size_t n = sizeof(sig);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, ccc) <= 0 ||
        EVP_DigestSign(md, sig, &n, (const unsigned char *)body, len) <= 0)
        abort();
    EVP_MD_CTX_free(md);
    char *b64 = malloc(4 * ((AG_SIG_LEN + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, sig, (int)n);
    return b64;
}

/* The text of the first element called name under the root, or NULL (xmlFree it). */
static xmlChar *child_text(xmlNode *root, const char *name)
{
    for (xmlNode *c = root->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !xmlStrcmp(c->name, (const xmlChar *)name))
            return xmlNodeGetContent(c);
    return NULL;
}

static void domain_xml(const json_t *params)
{
    char err[512];
    char *xml = ag_provision_domain_xml(NULL, &cfg, params, "/var/lib/bic/fuzz-overlay.qcow2",
                                        err, sizeof(err));
    if (!xml) return;
    xmlDoc *doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) abort(); /* the agent wrote XML that does not parse: an injection */
    xmlNode *root = xmlDocGetRootElement(doc);
    if (!root || xmlStrcmp(root->name, (const xmlChar *)"domain")) abort();
    xmlChar *name = child_text(root, "name"), *uuid = child_text(root, "uuid");
    const char *want_name = json_string_value(json_object_get(params, "name"));
    const char *want_uuid = json_string_value(json_object_get(params, "uuid"));
    if (!name || !uuid || !want_name || !want_uuid) abort();
    if (strcmp((const char *)name, want_name) || strcmp((const char *)uuid, want_uuid)) abort();
    xmlFree(name);
    xmlFree(uuid);
    xmlFreeDoc(doc);
    free(xml);
}

static void accepted(const ag_task_req *t, int call)
{
    if (t->server_id != SERVER_ID) abort();
    if (t->issued_at < NOW - AG_TASK_SKEW_S || t->issued_at > NOW + AG_TASK_SKEW_S) abort();
    if (call ? t->task_id != 0 : t->task_id < 1) abort();
    if (!json_is_object(t->params) || !t->type[0] || strlen(t->nonce) < AG_NONCE_MIN_LEN) abort();
    for (const char *c = t->type; *c; c++)
        if (*c <= ' ' || *c >= 127) abort();
    json_t *result = NULL;
    char err[512] = "";
    if (call) {
        int st = ag_exec_call(NULL, "192.0.2.1", t->type, t->params, &result, err, sizeof(err));
        if ((st != 400 && st != 503) || result || !err[0]) abort(); /* no hypervisor here */
    } else {
        ag_exec_env env = {.conn = NULL, .cfg = &cfg};
        int rc = ag_exec_task(&env, t->type, t->params, &result, err, sizeof(err));
        if (rc != -1 || result || !err[0]) abort();
    }
    domain_xml(t->params);
}

static void signed_body(const char *body, size_t len, int call)
{
    char *sig = sign(body, len);
    ag_nonces *nonces = ag_nonces_new(AG_NONCE_WINDOW_S, 64);
    ag_task_req t;
    char why[256];
    ag_verdict v = call ? ag_verify_call(pub, SERVER_ID, nonces, NOW, body, len, sig, &t, why,
                                         sizeof(why))
                        : ag_verify_task(pub, SERVER_ID, nonces, NOW, body, len, sig, &t, why,
                                         sizeof(why));
    if ((unsigned)v >= AG_V__MAX) abort();
    if (v == AG_V_OK) {
        accepted(&t, call);
        ag_task_req_clear(&t);
        /* the same body again is a replay */
        ag_task_req t2;
        v = call ? ag_verify_call(pub, SERVER_ID, nonces, NOW, body, len, sig, &t2, why,
                                  sizeof(why))
                 : ag_verify_task(pub, SERVER_ID, nonces, NOW, body, len, sig, &t2, why,
                                  sizeof(why));
        if (v != AG_V_REPLAY) abort();
    } else {
        if (t.params) abort(); /* a refusal hands nothing on */
    }
    /* and the parser alone */
    ag_task_req p;
    char why2[256];
    if (ag_task_req_parse(body, len, &p, why2, sizeof(why2)) == 0) ag_task_req_clear(&p);
    ag_nonces_free(nonces);
    free(sig);
}

static void as_sent(const fz_input *in)
{
    ag_nonces *nonces = ag_nonces_new(AG_NONCE_WINDOW_S, 64);
    ag_task_req t;
    char why[256];
    ag_verdict v = ag_verify_task(pub, SERVER_ID, nonces, NOW, in->rest, in->rest_len,
                                  in->field[0], &t, why, sizeof(why));
    if (v == AG_V_OK) abort(); /* the fuzzer cannot sign with CCC's key */
    ag_nonces_free(nonces);
}

static void route(const uint8_t *d, size_t n)
{
    if (n < 1) return;
    size_t nroutes = d[0] % 4;
    char *path = malloc(n);
    memcpy(path, d + 1, n - 1);
    path[n - 1] = '\0';
    ag_listener_kind kind;
    long i = ag_listener_route(path, nroutes, &kind);
    if (i >= 0) {
        const char *tail = kind == AG_LISTENER_CALL ? AG_LISTENER_CALL_PATH : AG_LISTENER_PATH;
        char want[128];
        if (nroutes)
            snprintf(want, sizeof(want), "%s%ld%s", AG_LISTENER_ROUTE_PREFIX, i, tail);
        else
            snprintf(want, sizeof(want), "%s", tail);
        if (strcmp(want, path) || (size_t)i >= (nroutes ? nroutes : 1)) abort();
    }
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size == 0) return 0;
    fz_input in;
    switch (data[0]) {
    case 'T':
    case 'C': {
        char *body = malloc(size);
        memcpy(body, data + 1, size - 1);
        signed_body(body, size - 1, data[0] == 'C');
        free(body);
        break;
    }
    case 'S':
        fz_split(&in, data + 1, size - 1, 1);
        as_sent(&in);
        fz_free(&in);
        break;
    case 'P':
        route(data + 1, size - 1);
        break;
    }
    return 0;
}
