/*
 * test_config.c - fcgi/config.c: defaults, INI file, environment overrides, errors.
 */
#include "bic_test.h"

#include <unistd.h>

#include "config.h"

/* Every BIC_<SECTION>_<NAME> variable config_load() reads, so tests start clean. */
static const char *const env_vars[] = {
#define ENV_NAME(sec, name, type, def) "BIC_" #sec "_" #name,
    BIC_CONFIG_KEYS(ENV_NAME)
#undef ENV_NAME
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
        char up[96];
        snprintf(up, sizeof(up), "%s", env_vars[i]);
        for (char *p = up; *p; p++)
            if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
        unsetenv(up);
    }
}

static int setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

/* Writes text to a new temporary file; the path goes into path (>= 32 bytes). */
static void write_ini(char *path, size_t len, const char *text)
{
    snprintf(path, len, "/tmp/bic-config-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
}

/* Loads text as a config file; returns config_load's result, removes the file. */
static int load_text(bic_config *cfg, const char *text, char *err, unsigned errlen)
{
    char path[64];
    write_ini(path, sizeof(path), text);
    int rc = config_load(cfg, path, err, errlen);
    unlink(path);
    return rc;
}

static void defaults_apply_without_a_file(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
    assert_string_equal(cfg.server_socket, "/run/bic/bicd.sock");
    assert_int_equal(cfg.server_socket_mode, 0660);
    assert_int_equal(cfg.server_threads, 4);
    assert_string_equal(cfg.server_agent_socket, "/run/bic/bicd-agent.sock");
    assert_int_equal(cfg.server_agent_threads, 2);
    assert_int_equal(cfg.database_port, 3306);
    assert_string_equal(cfg.database_socket, "/run/mysqld/mysqld.sock");
    assert_string_equal(cfg.database_name, "bic");
    assert_string_equal(cfg.database_host, "");
    assert_int_equal(cfg.auth_access_ttl, 900);
    assert_string_equal(cfg.auth_audience, "bic-portal");
    config_free(&cfg);
}

static void every_declared_default_is_loaded(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
#define CHECK_STR(sec, name, def)   assert_string_equal(cfg.sec##_##name, def);
#define CHECK_INT(sec, name, def)   assert_int_equal(cfg.sec##_##name, def);
#define CHECK(sec, name, type, def) CHECK_##type(sec, name, def)
    BIC_CONFIG_KEYS(CHECK)
#undef CHECK
#undef CHECK_INT
#undef CHECK_STR
    config_free(&cfg);
}

static void config_free_releases_and_clears_strings(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
    config_free(&cfg);
    assert_null(cfg.server_socket);
    assert_null(cfg.database_password);
}

static void file_values_replace_defaults(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    int rc = load_text(&cfg,
                       "; comment\n"
                       "[server]\n"
                       "socket = /tmp/x.sock\n"
                       "threads = 16\n"
                       "\n"
                       "[database]\n"
                       "host = db.example\n"
                       "port = 3307\n"
                       "password = s3cret with spaces\n"
                       "[auth]\n"
                       "access_ttl = 60\n",
                       err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.server_socket, "/tmp/x.sock");
    assert_int_equal(cfg.server_threads, 16);
    assert_string_equal(cfg.database_host, "db.example");
    assert_int_equal(cfg.database_port, 3307);
    assert_string_equal(cfg.database_password, "s3cret with spaces");
    assert_int_equal(cfg.auth_access_ttl, 60);
    /* keys not in the file keep their defaults */
    assert_string_equal(cfg.database_name, "bic");
    assert_int_equal(cfg.auth_refresh_ttl, 43200);
    config_free(&cfg);
}

static void later_value_for_the_same_key_wins(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg, "[database]\nname = one\nname = two\n", err, sizeof(err)), 0);
    assert_string_equal(cfg.database_name, "two");
    config_free(&cfg);
}

static void octal_socket_mode_parses_as_octal(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    assert_int_equal(load_text(&cfg, "[server]\nsocket_mode = 0660\n", err, sizeof(err)), 0);
    assert_int_equal(cfg.server_socket_mode, 0660);
    assert_int_equal(cfg.server_socket_mode, 432);
    config_free(&cfg);
    assert_int_equal(load_text(&cfg, "[server]\nsocket_mode = 0600\n", err, sizeof(err)), 0);
    assert_int_equal(cfg.server_socket_mode, 0600);
    config_free(&cfg);
}

static void env_overrides_the_file(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    setenv("BIC_DATABASE_SOCKET", "/env/mysqld.sock", 1);
    setenv("BIC_SERVER_THREADS", "12", 1);
    setenv("BIC_SERVER_SOCKET_MODE", "0600", 1);
    int rc = load_text(&cfg,
                       "[database]\nsocket = /file/mysqld.sock\nname = fromfile\n"
                       "[server]\nthreads = 3\n",
                       err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(cfg.database_socket, "/env/mysqld.sock");
    assert_int_equal(cfg.server_threads, 12);
    assert_int_equal(cfg.server_socket_mode, 0600);
    assert_string_equal(cfg.database_name, "fromfile"); /* not overridden */
    config_free(&cfg);
}

static void env_overrides_defaults_without_a_file(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    setenv("BIC_AUTH_ISSUER", "issuer-from-env", 1);
    setenv("BIC_DATABASE_PORT", "13306", 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
    assert_string_equal(cfg.auth_issuer, "issuer-from-env");
    assert_int_equal(cfg.database_port, 13306);
    config_free(&cfg);
}

static void env_may_set_an_empty_string(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    setenv("BIC_DATABASE_SOCKET", "", 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), 0);
    assert_string_equal(cfg.database_socket, "");
    config_free(&cfg);
}

static void bad_number_in_env_is_an_error(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    setenv("BIC_SERVER_THREADS", "many", 1);
    assert_int_equal(config_load(&cfg, NULL, err, sizeof(err)), -1);
    assert_true(test_contains(err, "threads"));
    assert_true(test_contains(err, "many"));
    config_free(&cfg);
}

static void unknown_key_is_an_error_naming_the_key(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    int rc = load_text(&cfg, "[server]\nthreads = 2\nthraeds = 4\n", err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_true(test_contains(err, "thraeds"));
    assert_true(test_contains(err, "server"));
    config_free(&cfg);
}

static void known_key_in_the_wrong_section_is_unknown(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    int rc = load_text(&cfg, "[auth]\nport = 1\n", err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_true(test_contains(err, "port"));
    assert_true(test_contains(err, "auth"));
    config_free(&cfg);
}

static void bad_number_in_file_is_an_error(void **state)
{
    (void)state;
    const char *bad[] = {
        "[server]\nthreads = four\n",     "[server]\nthreads = 4x\n",
        "[server]\nthreads =\n",          "[database]\nport = 99999999999999999999999\n",
        "[server]\nsocket_mode = 0689\n", /* 8 and 9 are not octal digits */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bic_config cfg;
        char err[256] = "";
        int rc = load_text(&cfg, bad[i], err, sizeof(err));
        if (rc != -1) test_fail("accepted: %s", bad[i]);
        assert_true(test_contains(err, "not a number"));
        config_free(&cfg);
    }
}

static void missing_file_is_an_error_naming_the_path(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    const char *path = "/nonexistent/bic-test/bicd.conf";
    assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
    assert_true(test_contains(err, path));
    config_free(&cfg);
}

static void syntax_error_is_reported_with_its_line(void **state)
{
    (void)state;
    bic_config cfg;
    char err[256] = "";
    int rc =
        load_text(&cfg, "[server]\nthreads = 2\nthis line has no equals sign\n", err, sizeof(err));
    assert_int_equal(rc, -1);
    assert_true(test_contains(err, ":3:"));
    config_free(&cfg);
}

static void error_message_is_truncated_to_errlen(void **state)
{
    (void)state;
    bic_config cfg;
    char err[8];
    memset(err, 'x', sizeof(err));
    assert_int_equal(config_load(&cfg, "/nonexistent/a/very/long/path/bicd.conf", err, sizeof(err)),
                     -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(defaults_apply_without_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(every_declared_default_is_loaded, setup, teardown),
        cmocka_unit_test_setup_teardown(config_free_releases_and_clears_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(file_values_replace_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(later_value_for_the_same_key_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(octal_socket_mode_parses_as_octal, setup, teardown),
        cmocka_unit_test_setup_teardown(env_overrides_the_file, setup, teardown),
        cmocka_unit_test_setup_teardown(env_overrides_defaults_without_a_file, setup, teardown),
        cmocka_unit_test_setup_teardown(env_may_set_an_empty_string, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_number_in_env_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_key_is_an_error_naming_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(known_key_in_the_wrong_section_is_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_number_in_file_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_is_an_error_naming_the_path, setup, teardown),
        cmocka_unit_test_setup_teardown(syntax_error_is_reported_with_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(error_message_is_truncated_to_errlen, setup, teardown),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
