-- 007: SR-IOV. What the agent reports about each physical NIC, the inventory of virtual
-- functions with the desktop that holds each one, a VLAN per pool, and a desktop's MAC.

ALTER TABLE server_nics
    ADD COLUMN IF NOT EXISTS pci_address   VARCHAR(16)  NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS vendor        VARCHAR(8)   NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS device        VARCHAR(8)   NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS mac           VARCHAR(17)  NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS link          ENUM('up', 'down', 'unknown') NOT NULL DEFAULT 'unknown',
    ADD COLUMN IF NOT EXISTS sriov_num_vfs INT UNSIGNED NOT NULL DEFAULT 0;

-- One row per virtual function a server reported (device/virtfnN of a PF). A VF is held by
-- at most one desktop: desktop_id is unique, set in the transaction that places the
-- desktop (UPDATE ... WHERE desktop_id IS NULL) and cleared by the foreign key when the
-- desktop row goes. present = 0: the last report no longer lists the VF; such a row is
-- kept only while a desktop holds it (shown as missing), else deleted.
CREATE TABLE IF NOT EXISTS server_vfs (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    server_id   BIGINT UNSIGNED NOT NULL,
    nic_name    VARCHAR(32)  NOT NULL,
    vf_index    INT UNSIGNED NOT NULL,
    pci_address VARCHAR(16)  NOT NULL,
    driver      VARCHAR(64)  NOT NULL DEFAULT '',
    present     BOOLEAN      NOT NULL DEFAULT TRUE,
    desktop_id  BIGINT UNSIGNED NULL,
    mac         VARCHAR(17)  NULL,
    vlan        SMALLINT UNSIGNED NULL,
    reserved_at DATETIME(3)  NULL,
    UNIQUE KEY uq_server_vfs_pci (server_id, pci_address),
    UNIQUE KEY uq_server_vfs_desktop (desktop_id),
    KEY ix_server_vfs_free (server_id, nic_name, desktop_id, vf_index),
    CONSTRAINT fk_server_vfs_server FOREIGN KEY (server_id) REFERENCES servers (id) ON DELETE CASCADE,
    CONSTRAINT fk_server_vfs_desktop FOREIGN KEY (desktop_id) REFERENCES desktops (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- vlan: the 802.1Q tag of the pool's desktops (VF VLAN, or the bridge port's); NULL = none.
-- nic_fallback: an SR-IOV pool's desktop gets a virtio NIC on the agent's bridge when no VF
-- is free (the desktop says so in nic_note) instead of waiting for one.
ALTER TABLE pools
    ADD COLUMN IF NOT EXISTS vlan         SMALLINT UNSIGNED NULL,
    ADD COLUMN IF NOT EXISTS nic_fallback BOOLEAN NOT NULL DEFAULT FALSE;

-- mac: chosen by CCC when it places the desktop (locally administered, 52:54:00 prefix);
-- nic_note: why the NIC is not what the spec asked for.
ALTER TABLE desktops
    ADD COLUMN IF NOT EXISTS mac      VARCHAR(17)  NULL,
    ADD COLUMN IF NOT EXISTS nic_note VARCHAR(255) NOT NULL DEFAULT '',
    ADD UNIQUE KEY IF NOT EXISTS uq_desktops_mac (mac);
