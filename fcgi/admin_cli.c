#include "admin_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "http.h"
#include "password.h"

static void usage(void)
{
    fputs("usage: bicd useradd --username NAME [--role user|operator|admin]\n"
          "                    [--display-name TEXT] [--reset] < password\n"
          "The password is read from the first line of standard input.\n"
          "--reset sets the password (and role) of an existing account.\n",
          stderr);
}

int admin_cli_useradd(const bic_config *cfg, int argc, char **argv)
{
    const char *username = NULL, *display = "", *role_s = "user";
    int reset = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--username") && i + 1 < argc)
            username = argv[++i];
        else if (!strcmp(argv[i], "--role") && i + 1 < argc)
            role_s = argv[++i];
        else if (!strcmp(argv[i], "--display-name") && i + 1 < argc)
            display = argv[++i];
        else if (!strcmp(argv[i], "--reset"))
            reset = 1;
        else {
            usage();
            return 2;
        }
    }
    if (!username || role_parse(role_s) == ROLE__MAX) {
        usage();
        return 2;
    }
    char pw[PASSWORD_MAX_LEN + 2];
    if (!fgets(pw, sizeof(pw), stdin)) {
        fputs("bicd useradd: no password on standard input\n", stderr);
        return 2;
    }
    pw[strcspn(pw, "\r\n")] = '\0';
    char why[128];
    if (!password_acceptable(pw, why, sizeof(why))) {
        fprintf(stderr, "bicd useradd: %s\n", why);
        return 2;
    }
    password_init(cfg);
    char hash[PASSWORD_HASH_LEN];
    if (password_hash(pw, hash) != BIC_E_OK) return 1;
    memset(pw, 0, sizeof(pw));

    bic_db *db = db_new(cfg, cfg->database_user, cfg->database_password);
    bic_arena *a = arena_new(0);
    int rc = 1;
    if (!db || !a) goto out;
    bic_err e = DB_EXEC(db, a, STMT_user_insert, NULL, P_STR(username), P_STR(display), P_STR(""),
                        P_STR(role_s), P_STR(hash));
    if (e == BIC_E_CONFLICT && reset) {
        e = DB_EXEC(db, a, STMT_user_reset_by_name, NULL, P_STR(hash), P_STR(role_s),
                    P_STR(username));
        if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_sessions_revoke_by_name, NULL, P_STR(username));
        /* break-glass: an admin who lost the phone and the recovery codes signs in again */
        if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_totp_delete_by_name, NULL, P_STR(username));
        if (e == BIC_E_OK) e = DB_EXEC(db, a, STMT_recovery_delete_by_name, NULL, P_STR(username));
    }
    if (e == BIC_E_CONFLICT) {
        fprintf(stderr, "bicd useradd: %s already exists (use --reset)\n", username);
        rc = 3;
    } else if (e != BIC_E_OK) {
        fprintf(stderr, "bicd useradd: %s\n", bic_err_message(e));
    } else {
        DB_EXEC(db, a, STMT_audit_insert, NULL, P_NULL, P_STR("bicd-cli"),
                P_STR(reset ? "user.reset_cli" : "user.create_cli"), P_STR("user"), P_STR(username),
                P_INT(1), P_STR(reset ? "{\"role\":\"reset\"}" : "{}"), P_STR(""), P_STR(""));
        printf("account %s ready (role %s)\n", username, role_s);
        rc = 0;
    }
out:
    arena_free(a);
    db_free(db);
    return rc;
}

int admin_cli_bench_argon2(const bic_config *cfg, int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20;
    if (n < 1) n = 1;
    password_init(cfg);
    char hash[PASSWORD_HASH_LEN];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        if (password_hash("benchmark-password-123", hash) != BIC_E_OK) return 1;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = ((double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6) / n;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("{\"ms_per_hash\": %.2f, \"cores\": %ld, \"concurrent_hashes\": %d, "
           "\"bound_logins_per_s\": %.1f}\n",
           ms, cores, password_max_concurrent(), password_max_concurrent() * 1000.0 / ms);
    return 0;
}
