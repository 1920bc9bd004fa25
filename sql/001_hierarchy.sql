-- 001: the BIC hierarchy from the paper.
-- CCC manages building blocks (each watched by an xCenter); a building block holds
-- modules (bModules, each brokered by a bCenter, 10 bServers); a module holds servers
-- (bServers, up to 100 desktops each).

CREATE TABLE IF NOT EXISTS building_blocks (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name        VARCHAR(64)  NOT NULL,
    description VARCHAR(255) NOT NULL DEFAULT '',
    created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_building_blocks_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS modules (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    building_block_id BIGINT UNSIGNED NOT NULL,
    name              VARCHAR(64)  NOT NULL,
    description       VARCHAR(255) NOT NULL DEFAULT '',
    max_servers       INT UNSIGNED NOT NULL DEFAULT 10,
    created_at        DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at        DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_modules_name (building_block_id, name),
    CONSTRAINT fk_modules_bb FOREIGN KEY (building_block_id) REFERENCES building_blocks (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS servers (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    module_id         BIGINT UNSIGNED NOT NULL,
    hostname          VARCHAR(253) NOT NULL,
    state             ENUM('enrolling', 'online', 'offline', 'maintenance') NOT NULL DEFAULT 'enrolling',
    hypervisor        VARCHAR(32)  NOT NULL DEFAULT '',
    mgmt_address      VARCHAR(64)  NOT NULL DEFAULT '',
    cores             INT UNSIGNED NOT NULL DEFAULT 0,
    memory_mib        BIGINT UNSIGNED NOT NULL DEFAULT 0,
    storage_gib       BIGINT UNSIGNED NOT NULL DEFAULT 0,
    max_desktops      INT UNSIGNED NOT NULL DEFAULT 100,
    last_heartbeat_at DATETIME(3)  NULL,
    created_at        DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at        DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_servers_hostname (hostname),
    KEY ix_servers_module_state (module_id, state),
    CONSTRAINT fk_servers_module FOREIGN KEY (module_id) REFERENCES modules (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS server_nics (
    id            BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    server_id     BIGINT UNSIGNED NOT NULL,
    name          VARCHAR(32)  NOT NULL,
    speed_mbps    INT UNSIGNED NOT NULL DEFAULT 0,
    sriov_capable BOOLEAN      NOT NULL DEFAULT FALSE,
    sriov_total_vfs INT UNSIGNED NOT NULL DEFAULT 0,
    UNIQUE KEY uq_server_nics (server_id, name),
    CONSTRAINT fk_server_nics_server FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
