-- 011_automation.sql - CCC automation (issue 8): the action log every automation loop writes,
-- and failure recovery (fcgi/recovery.c, docs/automation.md "Failure recovery"): per-module
-- settings, BMC (fencing) settings and the recovery state of servers, and what a desktop
-- being moved to another server needs. Power control and balancing add theirs in 012.

-- One row per decision of a loop (recovery, power, balance); dry-run rows are planned only.
CREATE TABLE IF NOT EXISTS automation_actions (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    module_id BIGINT UNSIGNED NOT NULL,
    loop_name ENUM('recovery','power','balance') NOT NULL,
    action VARCHAR(32) NOT NULL,          -- suspect, fence, fence_failed, recover, wake, power_off, migrate, ...
    server_id BIGINT UNSIGNED NULL, desktop_id BIGINT UNSIGNED NULL, target_server_id BIGINT UNSIGNED NULL,
    state ENUM('planned','running','done','failed','skipped') NOT NULL,
    dry_run BOOLEAN NOT NULL DEFAULT FALSE,
    reason VARCHAR(512) NOT NULL DEFAULT '',
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    KEY ix_aa_module_time (module_id, created_at), KEY ix_aa_server (server_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Failure recovery per module. No row = the defaults below (enabled, not dry-run).
CREATE TABLE IF NOT EXISTS recovery_settings (
    module_id        BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    enabled          BOOLEAN      NOT NULL DEFAULT TRUE,
    dry_run          BOOLEAN      NOT NULL DEFAULT FALSE,
    -- seconds without a heartbeat (after the server went offline) before fencing starts
    suspect_grace_s  INT UNSIGNED NOT NULL DEFAULT 30,
    -- seconds the BMC gets to confirm that the server is off
    fence_timeout_s  INT UNSIGNED NOT NULL DEFAULT 60,
    -- after the fencing chain fails: 'admin' waits for an administrator to confirm the server
    -- is off; 'retry' also tries the chain again every fence_retry_s
    fence_fallback   ENUM('admin', 'retry') NOT NULL DEFAULT 'admin',
    fence_retry_s    INT UNSIGNED NOT NULL DEFAULT 300,
    -- the servers of this module keep desktop disks on storage they all reach: dedicated
    -- desktops of a fenced server are restarted on another server of the module
    shared_storage   BOOLEAN      NOT NULL DEFAULT FALSE,
    -- desktops recovered per pass (each is placed, then created and started by its new server)
    batch            INT UNSIGNED NOT NULL DEFAULT 200,
    updated_by       VARCHAR(64)  NOT NULL DEFAULT '',
    updated_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    CONSTRAINT fk_recovery_settings_module FOREIGN KEY (module_id) REFERENCES modules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- BMC of a server (fencing; power control reuses it) and its recovery state. servers.state
-- keeps meaning "heartbeating or not"; recovery_state is the recovery loop's own:
--   none        nothing to do
--   suspect     offline, waiting suspect_grace_s (a heartbeat returns it to none)
--   fencing     the BMC was asked to power it off; waiting for the confirmation
--   fenced      confirmed off (BMC or admin): its desktops are recovered; stays until an
--               admin clears it, even when it heartbeats again (kept in maintenance)
--   unfenceable the chain could not confirm it is off: its desktops are never started
--               elsewhere until an admin confirms
ALTER TABLE servers
    ADD COLUMN IF NOT EXISTS bmc_type            ENUM('none', 'ipmi', 'redfish') NOT NULL DEFAULT 'none',
    ADD COLUMN IF NOT EXISTS bmc_address         VARCHAR(255)   NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS bmc_user            VARCHAR(128)   NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS bmc_password_sealed VARBINARY(4200) NULL,
    -- https BMCs with self-signed certificates: verify the certificate against this PEM
    -- (empty: the system's CAs)
    ADD COLUMN IF NOT EXISTS bmc_ca_cert         TEXT           NULL,
    ADD COLUMN IF NOT EXISTS recovery_state      ENUM('none', 'suspect', 'fencing', 'fenced', 'unfenceable')
                                                 NOT NULL DEFAULT 'none',
    ADD COLUMN IF NOT EXISTS recovery_changed_at DATETIME(3)    NULL,
    ADD COLUMN IF NOT EXISTS recovery_reason     VARCHAR(512)   NOT NULL DEFAULT '',
    -- how the server was confirmed off: redfish, ipmi, admin
    ADD COLUMN IF NOT EXISTS fence_method        VARCHAR(16)    NOT NULL DEFAULT '',
    -- when the power-off request went out (NULL: not yet)
    ADD COLUMN IF NOT EXISTS fence_sent_at       DATETIME(3)    NULL,
    ADD COLUMN IF NOT EXISTS fence_attempts      INT UNSIGNED   NOT NULL DEFAULT 0,
    -- every desktop of the fenced server was handled (moved, deleted or left stranded)
    ADD COLUMN IF NOT EXISTS recovery_done_at    DATETIME(3)    NULL,
    -- maintenance as it was before the server was fenced (restored when it is cleared)
    ADD COLUMN IF NOT EXISTS recovery_prev_maintenance BOOLEAN  NULL,
    -- dry-run: the plan for this outage was recorded (cleared when it heartbeats again)
    ADD COLUMN IF NOT EXISTS recovery_planned_at DATETIME(3)    NULL,
    ADD KEY IF NOT EXISTS ix_servers_recovery (recovery_state);

-- A desktop restarted on another server after its server was fenced: phase 'recovering'
-- until the new server created and started it (the reconciler leaves that phase alone; the
-- broker answers progress with step 'recovering': "your desktop is being moved").
ALTER TABLE desktops
    MODIFY phase ENUM('pending', 'provisioning', 'ready', 'refreshing', 'resizing', 'deleting', 'error',
                      'recovering') NULL,
    ADD COLUMN IF NOT EXISTS recovered_from      BIGINT UNSIGNED NULL,
    -- 'stranded': its server was fenced but its disk is not on shared storage
    ADD COLUMN IF NOT EXISTS recovery_note       VARCHAR(512)    NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS recovery_action_id  BIGINT UNSIGNED NULL,
    ADD KEY IF NOT EXISTS ix_desktops_recovered_from (recovered_from);
