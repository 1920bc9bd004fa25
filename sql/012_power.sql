-- 012: automatic power control and resource balancing (issue 8, fcgi/power.c, fcgi/drs.c).
-- Settings per module (a missing row means the documented defaults: both loops off), the power
-- state of each server as the power loop sees it, and what the balancer needs to remember.
-- The BMC columns (bmc_type, bmc_address, ...) come from 011 (recovery); the action log
-- automation_actions too.

-- One row per module. Times are seconds. schedule: "mon-fri 08:30 4; sat 10:00 2" (see
-- docs/automation.md, "Power control"): at those times at least that many servers of the
-- module are powered on; they are woken peak_lead_s before and kept for peak_hold_s after.
-- Times are local to tz_offset_min (minutes east of UTC).
CREATE TABLE IF NOT EXISTS power_settings (
    module_id       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    enabled         BOOLEAN       NOT NULL DEFAULT FALSE,
    dry_run         BOOLEAN       NOT NULL DEFAULT FALSE,
    min_on          INT UNSIGNED  NOT NULL DEFAULT 1,
    spare_slots     INT UNSIGNED  NOT NULL DEFAULT 10,
    empty_hold_s    INT UNSIGNED  NOT NULL DEFAULT 1800,
    wake_timeout_s  INT UNSIGNED  NOT NULL DEFAULT 600,
    max_parallel    INT UNSIGNED  NOT NULL DEFAULT 2,
    schedule        VARCHAR(1024) NOT NULL DEFAULT '',
    tz_offset_min   INT           NOT NULL DEFAULT 0,
    peak_lead_s     INT UNSIGNED  NOT NULL DEFAULT 900,
    peak_hold_s     INT UNSIGNED  NOT NULL DEFAULT 3600,
    wake_method     ENUM('auto', 'wol', 'bmc') NOT NULL DEFAULT 'auto',
    wol_broadcast   VARCHAR(64)   NOT NULL DEFAULT '255.255.255.255',
    wol_port        INT UNSIGNED  NOT NULL DEFAULT 9,
    updated_by      VARCHAR(64)   NOT NULL DEFAULT '',
    updated_at      DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    CONSTRAINT fk_power_settings_module FOREIGN KEY (module_id) REFERENCES modules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Load is in percent: CPU as the agent measures it, memory as max(measured use, memory of the
-- running desktops) over the host's memory. A server over cpu_high_pct or mem_high_pct for
-- hold_s sheds desktops; a move must lower the higher of the two servers' loads by at least
-- min_gain_pct; a desktop is not moved again within move_hold_s.
CREATE TABLE IF NOT EXISTS balance_settings (
    module_id       BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    enabled         BOOLEAN       NOT NULL DEFAULT FALSE,
    dry_run         BOOLEAN       NOT NULL DEFAULT FALSE,
    cpu_high_pct    INT UNSIGNED  NOT NULL DEFAULT 80,
    mem_high_pct    INT UNSIGNED  NOT NULL DEFAULT 85,
    hold_s          INT UNSIGNED  NOT NULL DEFAULT 300,
    min_gain_pct    INT UNSIGNED  NOT NULL DEFAULT 5,
    max_concurrent  INT UNSIGNED  NOT NULL DEFAULT 2,
    move_hold_s     INT UNSIGNED  NOT NULL DEFAULT 3600,
    updated_by      VARCHAR(64)   NOT NULL DEFAULT '',
    updated_at      DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    CONSTRAINT fk_balance_settings_module FOREIGN KEY (module_id) REFERENCES modules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- power_state: 'on' (also every server never touched by the loop), 'powering_off' (host.power_off
-- sent), 'off' (it stopped heartbeating after that), 'waking' (magic packet or BMC power-on
-- sent; 'on' again at its first heartbeat). power_empty_since: when the loop first saw the server
-- empty (NULL: not empty). wol_mac: the NIC to wake (NULL: the first reported NIC MAC).
-- migration_uri: the libvirt URI other hosts migrate to ('' = qemu+ssh://<hostname>/system).
ALTER TABLE servers
    ADD COLUMN IF NOT EXISTS power_state        ENUM('on', 'off', 'waking', 'powering_off') NOT NULL DEFAULT 'on',
    ADD COLUMN IF NOT EXISTS power_changed_at   DATETIME(3)  NULL,
    ADD COLUMN IF NOT EXISTS power_empty_since  DATETIME(3)  NULL,
    ADD COLUMN IF NOT EXISTS wol_mac            VARCHAR(17)  NULL,
    ADD COLUMN IF NOT EXISTS migration_uri      VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS balance_over_since DATETIME(3)  NULL;
