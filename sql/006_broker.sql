-- 006: the connection broker: per-pool security policies, the console address of a
-- desktop, desktop sessions and one-time console tickets.

ALTER TABLE pools
    ADD COLUMN IF NOT EXISTS clipboard             ENUM('off', 'in', 'out', 'both') NOT NULL DEFAULT 'both',
    ADD COLUMN IF NOT EXISTS view_only             BOOLEAN       NOT NULL DEFAULT FALSE,
    -- seconds; 0 = no limit
    ADD COLUMN IF NOT EXISTS max_session_s         INT UNSIGNED  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS idle_timeout_s        INT UNSIGNED  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS disconnect_timeout_s  INT UNSIGNED  NOT NULL DEFAULT 0,
    -- comma-separated CIDRs the client address must be in; '' = any
    ADD COLUMN IF NOT EXISTS allowed_networks      VARCHAR(1024) NOT NULL DEFAULT '',
    -- live sessions a user may hold in all pools when connecting here; 0 = no limit
    ADD COLUMN IF NOT EXISTS max_sessions_per_user INT UNSIGNED  NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS user_power            BOOLEAN       NOT NULL DEFAULT TRUE,
    -- floating pools: a desktop gets a fresh overlay after its session is logged off
    ADD COLUMN IF NOT EXISTS refresh_on_logoff     BOOLEAN       NOT NULL DEFAULT TRUE;

-- Where nginx reaches the desktop's QEMU VNC websocket (reported by the agent).
ALTER TABLE desktops
    ADD COLUMN IF NOT EXISTS console_host VARCHAR(64) NULL,
    ADD COLUMN IF NOT EXISTS console_port INT UNSIGNED NULL,
    ADD KEY IF NOT EXISTS ix_desktops_free (pool_id, assigned_user_id, phase);

-- A user's use of a desktop, from connect to log-off.
--   starting: the desktop is being started or prepared; connecting: a ticket was issued;
--   connected: the console is open; disconnected: it closed (the desktop stays the user's);
--   logged_off: ended (live_* columns are NULL then, so the unique keys only bind live rows:
--   one live session per user and pool, one per desktop).
CREATE TABLE IF NOT EXISTS desktop_sessions (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id          BIGINT UNSIGNED NOT NULL,
    pool_id          BIGINT UNSIGNED NULL,
    desktop_id       BIGINT UNSIGNED NULL,
    server_id        BIGINT UNSIGNED NULL,
    state            ENUM('starting', 'connecting', 'connected', 'disconnected', 'logged_off') NOT NULL,
    client_ip        VARCHAR(45)  NOT NULL DEFAULT '',
    started_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    connected_at     DATETIME(3)  NULL,
    disconnected_at  DATETIME(3)  NULL,
    ended_at         DATETIME(3)  NULL,
    -- the console page's last report, and the last input it saw
    last_seen_at     DATETIME(3)  NULL,
    last_activity_at DATETIME(3)  NULL,
    end_reason       VARCHAR(64)  NOT NULL DEFAULT '',
    -- the domain.start task a connect queued for a stopped desktop
    task_id          BIGINT UNSIGNED NULL,
    ended_by         VARCHAR(64)  NOT NULL DEFAULT '',
    updated_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    live_pool        BIGINT UNSIGNED AS (IF(state = 'logged_off', NULL, pool_id)) STORED,
    live_desktop     BIGINT UNSIGNED AS (IF(state = 'logged_off', NULL, desktop_id)) STORED,
    UNIQUE KEY uq_sessions_live_pool (user_id, live_pool),
    UNIQUE KEY uq_sessions_live_desktop (live_desktop),
    KEY ix_sessions_state (state, updated_at),
    KEY ix_sessions_desktop (desktop_id),
    KEY ix_sessions_pool (pool_id),
    -- no foreign keys on pool_id/desktop_id: they are the base of the live_* columns; ended
    -- sessions keep the ids of deleted pools and desktops as history
    CONSTRAINT fk_desktop_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One-time console tickets: only the SHA-256 of a ticket is stored.
CREATE TABLE IF NOT EXISTS console_tickets (
    ticket_hash BINARY(32)      NOT NULL PRIMARY KEY,
    session_id  BIGINT UNSIGNED NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    desktop_id  BIGINT UNSIGNED NOT NULL,
    client_ip   VARCHAR(45)     NOT NULL,
    expires_at  DATETIME(3)     NOT NULL,
    used_at     DATETIME(3)     NULL,
    KEY ix_console_tickets_expires (expires_at),
    CONSTRAINT fk_tickets_session FOREIGN KEY (session_id) REFERENCES desktop_sessions (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
