/*
 * power.h - automatic power control (issue 8), run by the bicd holding the leader lease.
 *
 * Per module with power_settings.enabled: keep enough powered-on capacity for what the pools
 * bound to the module still need to place plus spare_slots free desktop slots, and at least
 * min_on servers (more during a scheduled peak); wake powered-off servers by Wake-on-LAN or
 * their BMC when that is not met; power off servers that stayed empty for empty_hold_s when
 * the rest still meets it. A server with a desktop or a live session is never powered off.
 * Every action goes to automation_actions, the audit log and the server's events; with
 * dry_run it is only recorded as planned. See docs/automation.md, "Power control".
 */
#ifndef BIC_POWER_H
#define BIC_POWER_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "http.h"

#define POWER_SCHEDULE_MAX  32  /* entries of a schedule */
#define POWER_PLAN_STEPS    64  /* actions one pass may plan for a module */
#define POWER_DEDUP_S       600 /* a planned (dry-run) or skipped record is not repeated within */
#define POWER_MAGIC_LEN     102 /* 6 x 0xff, then the MAC 16 times */

/* A module's settings: the row, or the documented defaults when there is none. */
typedef struct power_settings {
    long long module_id;
    bool configured; /* a row exists */
    bool enabled, dry_run;
    long long min_on, spare_slots, empty_hold_s, wake_timeout_s, max_parallel;
    const char *schedule; /* arena or static */
    long long tz_offset_min, peak_lead_s, peak_hold_s;
    const char *wake_method; /* auto, wol, bmc */
    const char *wol_broadcast;
    long long wol_port;
    const char *module_name, *updated_by, *updated_at;
} power_settings;

/*
 * Loads module_id's settings into *out (strings in a). BIC_E_OK, BIC_E_NOT_FOUND (not
 * reported) when there is no such module, or the database error.
 */
bic_err power_settings_load(bic_db *db, bic_arena *a, long long module_id, power_settings *out);

/* The settings as the API shows them. New reference. */
json_t *power_settings_json(const power_settings *s);

/*
 * Checks a schedule: entries "DAYS HH:MM N" separated by ';' or new lines, DAYS "daily", "*"
 * or a comma list of mon..sun and ranges ("mon-fri,sun"), N 0..1000 servers. true, or false
 * with a sentence in why.
 */
bool power_schedule_valid(const char *text, char *why, size_t len);

/*
 * The most servers a schedule asks for at now: the highest N of the entries whose window
 * [peak - lead_s, peak + hold_s] holds now (times local to tz_offset_min), else 0. *next
 * (may be NULL) gets the next peak start after now within 8 days (0: none).
 */
long long power_schedule_min(const char *text, time_t now, long long tz_offset_min, long long lead_s,
                             long long hold_s, time_t *next);

/* Writes the Wake-on-LAN magic packet of mac ("aa:bb:cc:dd:ee:ff" or with '-') into out.
 * true, or false when mac is not a MAC address. */
bool power_magic_packet(const char *mac, unsigned char out[POWER_MAGIC_LEN]);

/*
 * Sends the magic packet of mac as one UDP datagram to addr:port (an IPv4 address; broadcast
 * allowed). 0, or -1 with the reason in err.
 */
int power_wol_send(const char *mac, const char *addr, long port, char *err, size_t len);

/*
 * What the power loop would do now for module_id: {"module_id", "enabled", "dry_run",
 * "need_slots", "free_slots", "on", "min_on", "scheduled_min", "next_peak", "servers":
 * [...], "actions": [{"action": "wake"|"power_off", "server_id", "hostname", "reason"}]}.
 * New reference in *out. BIC_E_OK, BIC_E_NOT_FOUND (not reported), or the database error.
 */
bic_err power_plan_json(bic_db *db, bic_arena *a, const bic_config *cfg, long long module_id,
                        json_t **out);

/*
 * Records one automation action (and its event and audit row) in the caller's transaction:
 * loop "power" or "balance", action, state planned/running/done/failed/skipped. desktop_id,
 * target 0 = none. *id (may be NULL) gets the row id.
 */
bic_err power_record(bic_req *req, long long module_id, const char *loop, const char *action,
                     long long server_id, long long desktop_id, long long target_id,
                     const char *state, bool dry_run, const char *reason, long long *id);

/* The pacing of one automation loop's passes on the controller thread (static storage in the
 * loop's file, name set, the rest zero). */
typedef struct power_loop {
    const char *name; /* "power" or "balance": the loop of its automation_actions */
    struct timespec last, last_prune;
} power_loop;

/*
 * Starts a pass of loop l: false when less than tick_ms went by since its last pass. Else
 * fills *req (a request-like context on db, a and cfg, with the request id "ctl-<name>" that
 * audit rows and log lines carry), drops the loop's old automation_actions once an hour, and
 * returns true.
 */
bool power_loop_begin(power_loop *l, long long tick_ms, bic_req *req, bic_db *db, bic_arena *a,
                      const bic_config *cfg);

/* The leader's pass (at most every [power] tick_ms). */
void power_tick(bic_db *db, bic_arena *a, const bic_config *cfg);

#endif
