-- 002: accounts, groups, sessions, login throttling and the audit log.

CREATE TABLE IF NOT EXISTS users (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username            VARCHAR(64)  NOT NULL,
    display_name        VARCHAR(128) NOT NULL DEFAULT '',
    email               VARCHAR(254) NOT NULL DEFAULT '',
    role                ENUM('user', 'operator', 'admin') NOT NULL DEFAULT 'user',
    -- room to scope an operator or admin to part of the hierarchy later
    scope_type          ENUM('global', 'building_block', 'module') NOT NULL DEFAULT 'global',
    scope_id            BIGINT UNSIGNED NULL,
    source              ENUM('local', 'ldap', 'oidc') NOT NULL DEFAULT 'local',
    password_hash       VARCHAR(160) NULL,
    disabled            BOOLEAN      NOT NULL DEFAULT FALSE,
    password_changed_at DATETIME(3)  NULL,
    last_login_at       DATETIME(3)  NULL,
    created_at          DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at          DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_users_username (username),
    KEY ix_users_display_name (display_name),
    KEY ix_users_role (role, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS user_groups (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(64)  NOT NULL,
    description VARCHAR(255) NOT NULL DEFAULT '',
    created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_user_groups_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS group_members (
    group_id   BIGINT UNSIGNED NOT NULL,
    user_id    BIGINT UNSIGNED NOT NULL,
    added_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (group_id, user_id),
    KEY ix_group_members_user (user_id),
    CONSTRAINT fk_gm_group FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE,
    CONSTRAINT fk_gm_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per sign-in. The access token (JWT) names the row; every request checks
-- that it is not revoked, so logout, password change and disabling act at once.
CREATE TABLE IF NOT EXISTS sessions (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT UNSIGNED NOT NULL,
    refresh_hash BINARY(32)   NOT NULL,
    csrf_token   CHAR(43)     NOT NULL,
    remote_addr  VARCHAR(45)  NOT NULL DEFAULT '',
    user_agent   VARCHAR(255) NOT NULL DEFAULT '',
    created_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    refreshed_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at   DATETIME(3)  NOT NULL,
    revoked_at   DATETIME(3)  NULL,
    UNIQUE KEY uq_sessions_refresh (refresh_hash),
    KEY ix_sessions_user (user_id, revoked_at),
    CONSTRAINT fk_sessions_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Failed sign-ins per user name, known or not, so lockout cannot reveal which
-- accounts exist.
CREATE TABLE IF NOT EXISTS login_throttle (
    username        VARCHAR(64) NOT NULL PRIMARY KEY,
    failures        INT UNSIGNED NOT NULL DEFAULT 0,
    locked_until    DATETIME(3) NULL,
    last_failure_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS audit_log (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at          DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    actor_id    BIGINT UNSIGNED NULL,
    actor_name  VARCHAR(64)  NOT NULL DEFAULT '',
    action      VARCHAR(64)  NOT NULL,
    target_type VARCHAR(32)  NOT NULL DEFAULT '',
    target_id   VARCHAR(64)  NOT NULL DEFAULT '',
    success     BOOLEAN      NOT NULL DEFAULT TRUE,
    summary     TEXT         NOT NULL,
    source_ip   VARCHAR(45)  NOT NULL DEFAULT '',
    request_id  VARCHAR(40)  NOT NULL DEFAULT '',
    KEY ix_audit_action (action, id),
    KEY ix_audit_actor (actor_name, id),
    KEY ix_audit_target (target_type, target_id, id),
    KEY ix_audit_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
