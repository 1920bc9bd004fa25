-- A role that a group gives its members (docs/api.md, "Groups"): a member's effective role is
-- the highest of the user's own role and the roles of the user's groups. With directory and
-- provider group mappings (009, 010), this maps a directory group to a BIC role.
ALTER TABLE user_groups
    ADD COLUMN IF NOT EXISTS role ENUM('user', 'operator', 'admin') NULL DEFAULT NULL AFTER description;
