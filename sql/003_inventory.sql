-- 003: agents, desktops, tasks, events, enrollment tokens and leader leases.

-- Maintenance is a flag beside the health state (a server in maintenance is still online
-- or offline); the state keeps only what heartbeats tell.
ALTER TABLE servers
    MODIFY state ENUM('enrolling', 'online', 'offline') NOT NULL DEFAULT 'enrolling',
    ADD COLUMN IF NOT EXISTS maintenance     BOOLEAN      NOT NULL DEFAULT FALSE AFTER state,
    ADD COLUMN IF NOT EXISTS machine_id      VARCHAR(64)  NULL AFTER hostname,
    ADD COLUMN IF NOT EXISTS credential_hash BINARY(32)   NULL,
    ADD COLUMN IF NOT EXISTS listen_url      VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS agent_version   VARCHAR(32)  NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS cpus            INT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS hb_seq          BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS cpu_pct         DOUBLE       NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS mem_used_mib    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS net_rx_bps      BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS net_tx_bps      BIGINT UNSIGNED NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS state_changed_at DATETIME(3) NULL,
    ADD UNIQUE KEY IF NOT EXISTS uq_servers_machine (machine_id),
    ADD KEY IF NOT EXISTS ix_servers_state_hb (state, last_heartbeat_at);

ALTER TABLE server_nics
    ADD COLUMN IF NOT EXISTS driver VARCHAR(64) NOT NULL DEFAULT '';

CREATE TABLE IF NOT EXISTS enrollment_tokens (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    building_block_id BIGINT UNSIGNED NOT NULL,
    module_id         BIGINT UNSIGNED NULL,
    token_hash        BINARY(32)   NOT NULL,
    hint              CHAR(8)      NOT NULL,
    description       VARCHAR(255) NOT NULL DEFAULT '',
    expires_at        DATETIME(3)  NOT NULL,
    revoked_at        DATETIME(3)  NULL,
    uses              INT UNSIGNED NOT NULL DEFAULT 0,
    created_by        VARCHAR(64)  NOT NULL DEFAULT '',
    created_at        DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_enrollment_token (token_hash),
    KEY ix_enrollment_bb (building_block_id, id),
    CONSTRAINT fk_enroll_bb FOREIGN KEY (building_block_id) REFERENCES building_blocks (id) ON DELETE CASCADE,
    CONSTRAINT fk_enroll_module FOREIGN KEY (module_id) REFERENCES modules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Desktops as the hypervisors report them (libvirt domains), one row per domain.
CREATE TABLE IF NOT EXISTS desktops (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    server_id   BIGINT UNSIGNED NOT NULL,
    uuid        CHAR(36)     NOT NULL,
    name        VARCHAR(255) NOT NULL,
    state       ENUM('running', 'paused', 'shutoff', 'crashed', 'pmsuspended', 'blocked', 'shutdown', 'nostate')
                NOT NULL DEFAULT 'nostate',
    vcpus       INT UNSIGNED NOT NULL DEFAULT 0,
    memory_mib  BIGINT UNSIGNED NOT NULL DEFAULT 0,
    cpu_time_ns BIGINT UNSIGNED NOT NULL DEFAULT 0,
    rx_bytes    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    tx_bytes    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    state_changed_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_desktops_server_uuid (server_id, uuid),
    KEY ix_desktops_uuid (uuid),
    KEY ix_desktops_state (state),
    CONSTRAINT fk_desktops_server FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS tasks (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    server_id       BIGINT UNSIGNED NOT NULL,
    type            VARCHAR(32)  NOT NULL,
    params          TEXT         NOT NULL,
    state           ENUM('queued', 'sent', 'running', 'succeeded', 'failed') NOT NULL DEFAULT 'queued',
    attempts        INT UNSIGNED NOT NULL DEFAULT 0,
    max_attempts    INT UNSIGNED NOT NULL DEFAULT 5,
    last_error      VARCHAR(512) NOT NULL DEFAULT '',
    result          TEXT         NULL,
    created_by      VARCHAR(64)  NOT NULL DEFAULT '',
    created_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    next_attempt_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at         DATETIME(3)  NULL,
    started_at      DATETIME(3)  NULL,
    finished_at     DATETIME(3)  NULL,
    KEY ix_tasks_due (state, next_attempt_at),
    KEY ix_tasks_server (server_id, id),
    CONSTRAINT fk_tasks_server FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS events (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at          DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    server_id   BIGINT UNSIGNED NULL,
    desktop_uuid CHAR(36)    NULL,
    kind        VARCHAR(32)  NOT NULL,
    detail      VARCHAR(255) NOT NULL DEFAULT '',
    KEY ix_events_server (server_id, id),
    KEY ix_events_desktop (desktop_uuid, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Time-limited leader leases: periodic work runs in whichever bicd holds the row.
CREATE TABLE IF NOT EXISTS leases (
    name       VARCHAR(64)  NOT NULL PRIMARY KEY,
    holder     VARCHAR(128) NOT NULL,
    expires_at DATETIME(3)  NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
