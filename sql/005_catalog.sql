-- 005: the catalog (golden images, their versions and per-server replicas, specs),
-- platform groups (desktop pools) with module bindings and entitlements, and the
-- columns that make a reported desktop a managed pool desktop.

CREATE TABLE IF NOT EXISTS images (
    id                   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name                 VARCHAR(64)  NOT NULL,
    description          VARCHAR(255) NOT NULL DEFAULT '',
    os_type              ENUM('linux', 'windows', 'other') NOT NULL DEFAULT 'linux',
    -- the version new and refreshed desktops get; NULL until one is published
    published_version_id BIGINT UNSIGNED NULL,
    created_at           DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at           DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_images_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One qcow2 file in the image store (catalog.image_store), never changed once ready.
CREATE TABLE IF NOT EXISTS image_versions (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    image_id      BIGINT UNSIGNED NOT NULL,
    version       INT UNSIGNED NOT NULL,
    state         ENUM('capturing', 'ready', 'failed') NOT NULL DEFAULT 'ready',
    source        ENUM('upload', 'path', 'capture') NOT NULL,
    file_name     VARCHAR(255) NOT NULL DEFAULT '',
    size_bytes    BIGINT UNSIGNED NOT NULL DEFAULT 0,
    sha256        CHAR(64)     NOT NULL DEFAULT '',
    notes         VARCHAR(255) NOT NULL DEFAULT '',
    error         VARCHAR(512) NOT NULL DEFAULT '',
    captured_from BIGINT UNSIGNED NULL,
    task_id       BIGINT UNSIGNED NULL,
    created_by    VARCHAR(64)  NOT NULL DEFAULT '',
    created_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_image_versions (image_id, version),
    CONSTRAINT fk_image_versions_image FOREIGN KEY (image_id) REFERENCES images (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A version copied into one server's libvirt storage pool by an image.fetch task.
CREATE TABLE IF NOT EXISTS image_replicas (
    version_id BIGINT UNSIGNED NOT NULL,
    server_id  BIGINT UNSIGNED NOT NULL,
    state      ENUM('fetching', 'ready', 'failed') NOT NULL DEFAULT 'fetching',
    task_id    BIGINT UNSIGNED NULL,
    volume     VARCHAR(255) NOT NULL DEFAULT '',
    -- 'content': the bytes in the pool were hashed again; 'download': only the downloaded file
    verified   VARCHAR(16)  NOT NULL DEFAULT '',
    error      VARCHAR(512) NOT NULL DEFAULT '',
    updated_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (version_id, server_id),
    KEY ix_image_replicas_server (server_id),
    KEY ix_image_replicas_task (task_id),
    CONSTRAINT fk_replicas_version FOREIGN KEY (version_id) REFERENCES image_versions (id) ON DELETE CASCADE,
    CONSTRAINT fk_replicas_server FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS specs (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(64)  NOT NULL,
    description VARCHAR(255) NOT NULL DEFAULT '',
    vcpus       INT UNSIGNED NOT NULL,
    memory_mib  BIGINT UNSIGNED NOT NULL,
    disk_gib    INT UNSIGNED NOT NULL,
    nic_type    ENUM('virtio', 'sriov') NOT NULL DEFAULT 'virtio',
    created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_specs_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Platform groups (desktop pools).
CREATE TABLE IF NOT EXISTS pools (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name          VARCHAR(64)  NOT NULL,
    description   VARCHAR(255) NOT NULL DEFAULT '',
    type          ENUM('dedicated', 'floating') NOT NULL,
    image_id      BIGINT UNSIGNED NOT NULL,
    spec_id       BIGINT UNSIGNED NOT NULL,
    min_size      INT UNSIGNED NOT NULL DEFAULT 0,
    max_size      INT UNSIGNED NOT NULL,
    spare         INT UNSIGNED NOT NULL DEFAULT 0,
    name_pattern  VARCHAR(64)  NOT NULL,
    placement     ENUM('spread', 'pack') NOT NULL DEFAULT 'spread',
    state         ENUM('active', 'paused', 'deleting') NOT NULL DEFAULT 'active',
    pause_reason  VARCHAR(512) NOT NULL DEFAULT '',
    failures      INT UNSIGNED NOT NULL DEFAULT 0,
    last_error    VARCHAR(512) NOT NULL DEFAULT '',
    reconciled_by VARCHAR(128) NOT NULL DEFAULT '',
    reconciled_at DATETIME(3)  NULL,
    created_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_pools_name (name),
    KEY ix_pools_state (state),
    CONSTRAINT fk_pools_image FOREIGN KEY (image_id) REFERENCES images (id),
    CONSTRAINT fk_pools_spec FOREIGN KEY (spec_id) REFERENCES specs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS pool_modules (
    pool_id   BIGINT UNSIGNED NOT NULL,
    module_id BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (pool_id, module_id),
    KEY ix_pool_modules_module (module_id),
    CONSTRAINT fk_pool_modules_pool FOREIGN KEY (pool_id) REFERENCES pools (id) ON DELETE CASCADE,
    CONSTRAINT fk_pool_modules_module FOREIGN KEY (module_id) REFERENCES modules (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Who may use a pool: a user or a group (exactly one of the two per row).
CREATE TABLE IF NOT EXISTS pool_entitlements (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    pool_id    BIGINT UNSIGNED NOT NULL,
    user_id    BIGINT UNSIGNED NULL,
    group_id   BIGINT UNSIGNED NULL,
    created_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_pool_ent_user (pool_id, user_id),
    UNIQUE KEY uq_pool_ent_group (pool_id, group_id),
    KEY ix_pool_ent_user (user_id),
    KEY ix_pool_ent_group (group_id),
    CONSTRAINT ck_pool_ent_one CHECK ((user_id IS NULL) <> (group_id IS NULL)),
    CONSTRAINT fk_pool_ent_pool FOREIGN KEY (pool_id) REFERENCES pools (id) ON DELETE CASCADE,
    CONSTRAINT fk_pool_ent_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT fk_pool_ent_group FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A managed desktop is a row CCC creates (pool_id set) before its domain exists; the
-- heartbeat then fills the reported columns of the same (server_id, uuid) row.
--   phase: pending (placed, waiting for its image on the server) → provisioning →
--   ready; refreshing / resizing / deleting while a task runs; error when one failed.
--   present: the server's last full heartbeat listed the domain.
ALTER TABLE desktops
    ADD COLUMN IF NOT EXISTS pool_id          BIGINT UNSIGNED NULL AFTER server_id,
    ADD COLUMN IF NOT EXISTS seq_no           INT UNSIGNED NULL AFTER pool_id,
    ADD COLUMN IF NOT EXISTS phase            ENUM('pending', 'provisioning', 'ready', 'refreshing',
                                                   'resizing', 'deleting', 'error') NULL AFTER state,
    ADD COLUMN IF NOT EXISTS phase_error      VARCHAR(512) NOT NULL DEFAULT '' AFTER phase,
    ADD COLUMN IF NOT EXISTS phase_changed_at DATETIME(3)  NULL AFTER phase_error,
    ADD COLUMN IF NOT EXISTS present          BOOLEAN      NOT NULL DEFAULT TRUE AFTER phase_changed_at,
    ADD COLUMN IF NOT EXISTS task_id          BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS image_version_id BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS volume           VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS spec_vcpus       INT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS spec_memory_mib  BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS spec_disk_gib    INT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS nic_type         ENUM('virtio', 'sriov') NULL,
    ADD COLUMN IF NOT EXISTS assigned_user_id BIGINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS created_at       DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    ADD UNIQUE KEY IF NOT EXISTS uq_desktops_pool_seq (pool_id, seq_no),
    ADD KEY IF NOT EXISTS ix_desktops_phase (phase),
    ADD KEY IF NOT EXISTS ix_desktops_task (task_id),
    ADD CONSTRAINT fk_desktops_pool FOREIGN KEY IF NOT EXISTS (pool_id) REFERENCES pools (id),
    ADD CONSTRAINT fk_desktops_user FOREIGN KEY IF NOT EXISTS (assigned_user_id) REFERENCES users (id) ON DELETE SET NULL;
