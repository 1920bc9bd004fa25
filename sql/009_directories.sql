-- 009: LDAP / Active Directory sign-in: the directories an admin configures, which directory
-- groups make their users members of which BIC groups, and which users and memberships come
-- from a directory. See docs/directories.md.

-- One directory (one or more servers holding the same tree). bind_password_enc is the service
-- account's password sealed with AES-256-GCM under a key derived from [auth] secret_file and
-- bound to the row's id (nonce 12 || ciphertext || tag 16 bytes); the API never returns it.
-- ca_pem: the CA certificates (PEM) the servers' certificates must chain to; '' trusts the
-- system's CAs. Filters hold %s/%u (the user name, escaped) and, in group_filter, %d (the
-- user's DN). sync_interval: seconds between scheduled syncs; 0 takes [directory]
-- sync_interval. Directories are asked in (sort_order, id) order for a name no user has yet.
CREATE TABLE IF NOT EXISTS directories (
    id                 BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name               VARCHAR(64)    NOT NULL,
    url                VARCHAR(1024)  NOT NULL,
    starttls           BOOLEAN        NOT NULL DEFAULT FALSE,
    ca_pem             TEXT           NOT NULL,
    bind_dn            VARCHAR(1024)  NOT NULL DEFAULT '',
    bind_password_enc  VARBINARY(600) NULL,
    user_base          VARCHAR(1024)  NOT NULL,
    user_filter        VARCHAR(1024)  NOT NULL,
    group_base         VARCHAR(1024)  NOT NULL DEFAULT '',
    group_filter       VARCHAR(1024)  NOT NULL DEFAULT '',
    disabled_filter    VARCHAR(1024)  NOT NULL DEFAULT '',
    attr_username      VARCHAR(64)    NOT NULL DEFAULT 'uid',
    attr_display_name  VARCHAR(64)    NOT NULL DEFAULT 'cn',
    attr_email         VARCHAR(64)    NOT NULL DEFAULT 'mail',
    attr_member_of     VARCHAR(64)    NOT NULL DEFAULT '',
    timeout_seconds    INT UNSIGNED   NOT NULL DEFAULT 5,
    sync_interval      INT UNSIGNED   NOT NULL DEFAULT 0,
    enabled            BOOLEAN        NOT NULL DEFAULT TRUE,
    sort_order         INT            NOT NULL DEFAULT 100,
    -- the scheduled sync: when the running pass started, when the last one ended and how
    sync_started_at    DATETIME(3)    NULL,
    last_sync_at       DATETIME(3)    NULL,
    last_sync_error    VARCHAR(512)   NOT NULL DEFAULT '',
    last_sync_users    INT UNSIGNED   NOT NULL DEFAULT 0,
    created_at         DATETIME(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at         DATETIME(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_directories_name (name),
    KEY ix_directories_order (enabled, sort_order, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A directory group whose members belong to a BIC group. dn_hash is the sha256 of the DN in
-- the form it is compared in (RFC 4514 string form, lower case), so one group maps once.
CREATE TABLE IF NOT EXISTS directory_group_maps (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    directory_id BIGINT UNSIGNED NOT NULL,
    group_dn     VARCHAR(1024)   NOT NULL,
    dn_hash      BINARY(32)      NOT NULL,
    group_id     BIGINT UNSIGNED NOT NULL,
    created_at   DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_directory_group_maps (directory_id, dn_hash, group_id),
    KEY ix_directory_group_maps_group (group_id),
    CONSTRAINT fk_dgm_directory FOREIGN KEY (directory_id) REFERENCES directories (id) ON DELETE CASCADE,
    CONSTRAINT fk_dgm_group FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A user made by a directory sign-in (source 'ldap'): which directory, the entry's DN, and
-- whether the directory says the account is disabled (kept apart from `disabled`, the admin's
-- switch, so a sync never overrides an admin). A deleted directory leaves its users with
-- directory_id NULL: they cannot sign in until an admin gives them a local password.
ALTER TABLE users
    ADD COLUMN IF NOT EXISTS directory_id        BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS directory_dn        VARCHAR(1024)   NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS directory_disabled  BOOLEAN         NOT NULL DEFAULT FALSE,
    ADD COLUMN IF NOT EXISTS directory_synced_at DATETIME(3)     NULL,
    ADD KEY IF NOT EXISTS ix_users_directory (directory_id, id),
    ADD CONSTRAINT fk_users_directory FOREIGN KEY IF NOT EXISTS (directory_id)
        REFERENCES directories (id) ON DELETE SET NULL;

-- A membership a directory gave (directory_id set) is replaced at every sign-in and sync of its
-- user; one an admin gave (NULL) is never touched by a directory.
ALTER TABLE group_members
    ADD COLUMN IF NOT EXISTS directory_id BIGINT UNSIGNED NULL,
    ADD KEY IF NOT EXISTS ix_group_members_directory (user_id, directory_id),
    ADD CONSTRAINT fk_gm_directory FOREIGN KEY IF NOT EXISTS (directory_id)
        REFERENCES directories (id) ON DELETE CASCADE;
