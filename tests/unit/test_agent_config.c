/*
 * test_agent_config.c - agent/ag_config.c: [agent] keys from an INI file, the
 * BIC_AGENT_<KEY> environment overrides, and the checks and defaults of
 * ag_config_resolve (machine_id from <root_prefix>/etc/machine-id, hostname,
 * listen host:port), and the SR-IOV keys bridge, sriov_numvfs and
 * sriov_netlink.
 */
#include "bic_test.h"

#include <sys/stat.h>
#include <unistd.h>

#include "ag_config.h"

static const char *const env_keys[] = {
    "BIC_AGENT_CCC_URL",
    "BIC_AGENT_CA_FILE",
    "BIC_AGENT_TOKEN",
    "BIC_AGENT_STATE_DIR",
    "BIC_AGENT_LISTEN",
    "BIC_AGENT_ADVERTISE_URL",
    "BIC_AGENT_LIBVIRT_URI",
    "BIC_AGENT_ROOT_PREFIX",
    "BIC_AGENT_MACHINE_ID",
    "BIC_AGENT_HOSTNAME",
    "BIC_AGENT_HEARTBEAT_INTERVAL",
    "BIC_AGENT_BRIDGE",
    "BIC_AGENT_SRIOV_NUMVFS",
    "BIC_AGENT_SRIOV_NETLINK",
};

static char dir[64];

static int clean_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++)
        unsetenv(env_keys[i]);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/bic-agent-config-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "%s/agent.ini", dir);
    unlink(cmd);
    snprintf(cmd, sizeof(cmd), "%s/etc/machine-id", dir);
    unlink(cmd);
    snprintf(cmd, sizeof(cmd), "%s/etc", dir);
    rmdir(cmd);
    rmdir(dir);
    return 0;
}

static const char *write_ini(const char *text)
{
    static char path[128];
    snprintf(path, sizeof(path), "%s/agent.ini", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void defaults_without_a_file(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(ag_config_load(&c, NULL, err, sizeof(err)), 0);
    assert_string_equal(c.ccc_url, "");
    assert_string_equal(c.state_dir, "/var/lib/bic-agent");
    assert_string_equal(c.listen, "0.0.0.0:7443");
    assert_string_equal(c.libvirt_uri, "qemu:///system");
    assert_string_equal(c.root_prefix, "");
    assert_string_equal(c.advertise_url, "");
    assert_int_equal(c.heartbeat_interval, 0);
    assert_string_equal(c.bridge, "");
    assert_string_equal(c.sriov_numvfs, "");
    assert_string_equal(c.sriov_netlink, "auto");
    ag_config_free(&c);
}

static void file_values_are_read(void **state)
{
    (void)state;
    const char *p = write_ini("; bic-agent\n[agent]\nccc_url = https://127.0.0.1:18443\n"
                              "ca_file = /etc/bic/ca.pem\ntoken = bbt_x\nstate_dir = /tmp/s\n"
                              "listen = 127.0.0.1:0\nlibvirt_uri = test:///default\n"
                              "machine_id = 0123456789abcdef\nhostname = bs-0101\n"
                              "heartbeat_interval = 5\n");
    ag_config c;
    char err[256];
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), 0);
    assert_string_equal(c.ccc_url, "https://127.0.0.1:18443");
    assert_string_equal(c.ca_file, "/etc/bic/ca.pem");
    assert_string_equal(c.token, "bbt_x");
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_string_equal(c.libvirt_uri, "test:///default");
    assert_string_equal(c.machine_id, "0123456789abcdef");
    assert_string_equal(c.hostname, "bs-0101");
    assert_int_equal(c.heartbeat_interval, 5);
    ag_config_free(&c);
}

static void environment_overrides_the_file(void **state)
{
    (void)state;
    const char *p = write_ini("[agent]\nccc_url = https://file:1\nheartbeat_interval = 5\n");
    setenv("BIC_AGENT_CCC_URL", "https://env:2", 1);
    setenv("BIC_AGENT_HEARTBEAT_INTERVAL", "7", 1);
    setenv("BIC_AGENT_LISTEN", "127.0.0.1:9999", 1);
    ag_config c;
    char err[256];
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), 0);
    assert_string_equal(c.ccc_url, "https://env:2");
    assert_int_equal(c.heartbeat_interval, 7);
    assert_string_equal(c.listen, "127.0.0.1:9999");
    ag_config_free(&c);
}

static void unknown_key_or_section_is_refused(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    const char *p = write_ini("[agent]\nccc_uri = https://typo:1\n");
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), -1);
    assert_true(test_contains(err, "ccc_uri"));
    ag_config_free(&c);
    p = write_ini("[server]\nccc_url = https://x:1\n");
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), -1);
    assert_true(test_contains(err, "[server]"));
    ag_config_free(&c);
}

static void bad_number_is_refused_in_file_and_environment(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    const char *p = write_ini("[agent]\nheartbeat_interval = ten\n");
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), -1);
    assert_true(test_contains(err, "heartbeat_interval"));
    ag_config_free(&c);
    setenv("BIC_AGENT_HEARTBEAT_INTERVAL", "5s", 1);
    assert_int_equal(ag_config_load(&c, NULL, err, sizeof(err)), -1);
    assert_true(test_contains(err, "BIC_AGENT_HEARTBEAT_INTERVAL"));
    ag_config_free(&c);
}

static void missing_file_is_an_error(void **state)
{
    (void)state;
    ag_config c;
    char err[256];
    assert_int_equal(ag_config_load(&c, "/nonexistent/agent.ini", err, sizeof(err)), -1);
    assert_true(test_contains(err, "/nonexistent/agent.ini"));
    ag_config_free(&c);
}

static void listen_forms(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(ag_listen_parse("127.0.0.1:7443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7443);
    assert_int_equal(ag_listen_parse("[::1]:0", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(ag_listen_parse(":8080", host, sizeof(host), &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 8080);
    assert_int_equal(ag_listen_parse("bs-0101.mgmt:7443", host, sizeof(host), &port), 0);
    assert_string_equal(host, "bs-0101.mgmt");
    const char *bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                         "host:12x",  "::1:80",     "[::1]80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ag_listen_parse(bad[i], host, sizeof(host), &port) == 0)
            test_fail("'%s' was accepted", bad[i]);
}

/* A config for resolve: a valid base the tests then break one key of. */
static void base(ag_config *c)
{
    char err[256];
    assert_int_equal(ag_config_load(c, NULL, err, sizeof(err)), 0);
    free(c->ccc_url);
    c->ccc_url = strdup("https://127.0.0.1:18443/");
    free(c->listen);
    c->listen = strdup("127.0.0.1:0");
    free(c->machine_id);
    c->machine_id = strdup("0123456789abcdef0123456789abcdef");
    free(c->hostname);
    c->hostname = strdup("bs-0101");
}

static void resolve_accepts_a_good_config_and_trims_the_url(void **state)
{
    (void)state;
    ag_config c;
    char err[256] = "";
    base(&c);
    if (ag_config_resolve(&c, err, sizeof(err)) < 0) test_fail("%s", err);
    assert_string_equal(c.ccc_url, "https://127.0.0.1:18443");
    assert_string_equal(c.listen_host, "127.0.0.1");
    assert_int_equal(c.listen_port, 0);
    ag_config_free(&c);
}

static void resolve_reads_machine_id_through_the_root_prefix(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/etc", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/etc/machine-id", dir);
    FILE *f = fopen(path, "w");
    fputs("3f2a5c0e9d8b4a7f8e6d5c4b3a291807\n", f);
    fclose(f);
    ag_config c;
    char err[256] = "";
    base(&c);
    free(c.machine_id);
    c.machine_id = strdup("");
    free(c.root_prefix);
    c.root_prefix = strdup(dir);
    if (ag_config_resolve(&c, err, sizeof(err)) < 0) test_fail("%s", err);
    assert_string_equal(c.machine_id, "3f2a5c0e9d8b4a7f8e6d5c4b3a291807");
    ag_config_free(&c);
    /* and without the file: an error that names it */
    base(&c);
    free(c.machine_id);
    c.machine_id = strdup("");
    free(c.root_prefix);
    c.root_prefix = strdup("/nonexistent/root");
    assert_int_equal(ag_config_resolve(&c, err, sizeof(err)), -1);
    assert_true(test_contains(err, "/nonexistent/root/etc/machine-id"));
    ag_config_free(&c);
}

static void resolve_fills_the_hostname(void **state)
{
    (void)state;
    ag_config c;
    char err[256] = "";
    base(&c);
    free(c.hostname);
    c.hostname = strdup("");
    if (ag_config_resolve(&c, err, sizeof(err)) < 0) test_fail("%s", err);
    char host[256];
    gethostname(host, sizeof(host));
    assert_string_equal(c.hostname, host);
    ag_config_free(&c);
}

static void resolve_refuses_bad_values(void **state)
{
    (void)state;
    const struct {
        const char *key, *value, *msg;
    } cases[] = {
        {"ccc_url", "", "ccc_url"},
        {"ccc_url", "ftp://x", "ccc_url"},
        {"listen", "7443", "listen"},
        {"advertise_url", "tcp://x:1", "advertise_url"},
        {"machine_id", "short", "machine_id"},
        {"machine_id", "has space in it", "machine_id"},
        {"hostname", "two words", "hostname"},
        {"state_dir", "", "state_dir"},
        {"heartbeat_interval", "-1", "heartbeat_interval"},
        {"heartbeat_interval", "3601", "heartbeat_interval"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ag_config c;
        char err[256] = "";
        base(&c);
        if (!strcmp(cases[i].key, "heartbeat_interval")) {
            c.heartbeat_interval = atol(cases[i].value);
        } else {
            char **field = !strcmp(cases[i].key, "ccc_url")         ? &c.ccc_url
                           : !strcmp(cases[i].key, "listen")        ? &c.listen
                           : !strcmp(cases[i].key, "advertise_url") ? &c.advertise_url
                           : !strcmp(cases[i].key, "machine_id")    ? &c.machine_id
                           : !strcmp(cases[i].key, "hostname")      ? &c.hostname
                                                                    : &c.state_dir;
            free(*field);
            *field = strdup(cases[i].value);
        }
        if (ag_config_resolve(&c, err, sizeof(err)) == 0)
            test_fail("%s = '%s' was accepted", cases[i].key, cases[i].value);
        if (!test_contains(err, cases[i].msg))
            test_fail("%s = '%s': message '%s' does not name it", cases[i].key, cases[i].value,
                      err);
        ag_config_free(&c);
    }
}

static void sriov_keys_are_read_and_checked(void **state)
{
    (void)state;
    const char *p = write_ini("[agent]\nbridge = br-desk\nsriov_numvfs = ens1f0=8, enp3s0f0=4\n"
                              "sriov_netlink = off\n");
    ag_config c;
    char err[256] = "";
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), 0);
    assert_string_equal(c.bridge, "br-desk");
    assert_string_equal(c.sriov_numvfs, "ens1f0=8, enp3s0f0=4");
    assert_string_equal(c.sriov_netlink, "off");
    ag_config_free(&c);
    /* the environment wins, as for every key */
    setenv("BIC_AGENT_SRIOV_NETLINK", "on", 1);
    assert_int_equal(ag_config_load(&c, p, err, sizeof(err)), 0);
    assert_string_equal(c.sriov_netlink, "on");
    ag_config_free(&c);
    unsetenv("BIC_AGENT_SRIOV_NETLINK");

    const struct {
        const char *key, *value, *msg;
    } good[] =
        {
            {"bridge", "br0", NULL},
            {"bridge", "", NULL},
            {"sriov_numvfs", "", NULL},
            {"sriov_numvfs", "ens1f0=0", NULL},
            {"sriov_numvfs", " ens1f0 = 64 ,ens1f1=2 ", NULL},
            {"sriov_netlink", "auto", NULL},
            {"sriov_netlink", "on", NULL},
            {"sriov_netlink", "off", NULL},
        },
      bad[] = {
          {"bridge", "br/0", "bridge"},
          {"bridge", "a-bridge-name-too-long", "bridge"},
          {"bridge", "br 0", "bridge"},
          {"bridge", "..", "bridge"},
          {"sriov_numvfs", "ens1f0", "sriov_numvfs"},
          {"sriov_numvfs", "ens1f0=", "sriov_numvfs"},
          {"sriov_numvfs", "ens1f0=-1", "sriov_numvfs"},
          {"sriov_numvfs", "ens1f0=4097", "sriov_numvfs"},
          {"sriov_numvfs", "ens1f0=8x", "sriov_numvfs"},
          {"sriov_numvfs", "ens1f0=8,ens1f0=4", "named twice"},
          {"sriov_numvfs", "ens1f0=8,", "sriov_numvfs"},
          {"sriov_numvfs", "../x=8", "not an interface name"},
          {"sriov_numvfs", "a/b=1", "not an interface name"},
          {"sriov_netlink", "yes", "sriov_netlink"},
          {"sriov_netlink", "", "sriov_netlink"},
      };
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass ? sizeof(bad) / sizeof(bad[0]) : sizeof(good) / sizeof(good[0]);
        for (size_t i = 0; i < n; i++) {
            const char *key = pass ? bad[i].key : good[i].key;
            const char *value = pass ? bad[i].value : good[i].value;
            base(&c);
            assert_int_equal(ag_config_set(&c, key, value), 0);
            *err = '\0';
            int rc = ag_config_resolve(&c, err, sizeof(err));
            if (!pass && rc < 0) test_fail("%s = '%s' was refused: %s", key, value, err);
            if (pass && rc == 0) test_fail("%s = '%s' was accepted", key, value);
            if (pass && !test_contains(err, bad[i].msg))
                test_fail("%s = '%s': message '%s' does not say '%s'", key, value, err, bad[i].msg);
            ag_config_free(&c);
        }
    }
}

static void sriov_netlink_auto_follows_the_root_prefix(void **state)
{
    (void)state;
    ag_config c;
    base(&c);
    assert_int_equal(ag_config_sriov_netlink(&c), 1); /* auto, this machine's /sys */
    assert_int_equal(ag_config_set(&c, "root_prefix", "/srv/fixture"), 0);
    assert_int_equal(ag_config_sriov_netlink(&c), 0); /* auto on a fixture tree */
    assert_int_equal(ag_config_set(&c, "sriov_netlink", "on"), 0);
    assert_int_equal(ag_config_sriov_netlink(&c), 1);
    assert_int_equal(ag_config_set(&c, "root_prefix", ""), 0);
    assert_int_equal(ag_config_set(&c, "sriov_netlink", "off"), 0);
    assert_int_equal(ag_config_sriov_netlink(&c), 0);
    ag_config_free(&c);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup(name, clean_env)
    const struct CMUnitTest tests[] = {
        T(defaults_without_a_file),
        T(file_values_are_read),
        T(environment_overrides_the_file),
        T(unknown_key_or_section_is_refused),
        T(bad_number_is_refused_in_file_and_environment),
        T(missing_file_is_an_error),
        T(listen_forms),
        T(resolve_accepts_a_good_config_and_trims_the_url),
        T(resolve_reads_machine_id_through_the_root_prefix),
        T(resolve_fills_the_hostname),
        T(resolve_refuses_bad_values),
        T(sriov_keys_are_read_and_checked),
        T(sriov_netlink_auto_follows_the_root_prefix),
    };
    return cmocka_run_group_tests_name("agent_config", tests, group_setup, group_teardown);
}
