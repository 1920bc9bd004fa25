-- 008: the second factor: TOTP secrets (RFC 6238), one-time recovery codes, the pending
-- second step of a sign-in, and the per-group policy that requires it. See docs/mfa.md.

-- One TOTP factor per user. The secret is sealed with AES-256-GCM under a key derived from
-- [auth] secret_file and bound to the user (nonce 12 || ciphertext 20 || tag 16 bytes); the
-- API never returns it after enrolment. confirmed_at NULL: enrolment started, not confirmed,
-- so it does not count at sign-in. last_step is the 30-second step of the last accepted
-- code: a code of that step or an earlier one is refused, so no code works twice.
CREATE TABLE IF NOT EXISTS user_totp (
    user_id      BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    secret_enc   VARBINARY(64) NOT NULL,
    confirmed_at DATETIME(3)   NULL,
    last_step    BIGINT        NOT NULL DEFAULT 0,
    last_used_at DATETIME(3)   NULL,
    created_at   DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    CONSTRAINT fk_user_totp_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Ten per set, shown once; only the sha256 of the canonical code is kept. A used code keeps
-- its row (used_at) until the set is replaced.
CREATE TABLE IF NOT EXISTS user_recovery_codes (
    user_id    BIGINT UNSIGNED NOT NULL,
    code_hash  BINARY(32)  NOT NULL,
    used_at    DATETIME(3) NULL,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (user_id, code_hash),
    CONSTRAINT fk_recovery_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The second step of a sign-in whose password was right: a random token (only its sha256 is
-- kept), short-lived and single use. purpose verify: the user has TOTP and must give a code;
-- enroll: a group requires MFA and the user has none yet, so the token allows enrolment and
-- nothing else.
CREATE TABLE IF NOT EXISTS mfa_challenges (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_hash  BINARY(32)   NOT NULL,
    user_id     BIGINT UNSIGNED NOT NULL,
    purpose     ENUM('verify', 'enroll') NOT NULL,
    remote_addr VARCHAR(45)  NOT NULL DEFAULT '',
    attempts    INT UNSIGNED NOT NULL DEFAULT 0,
    created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at  DATETIME(3)  NOT NULL,
    used_at     DATETIME(3)  NULL,
    UNIQUE KEY uq_mfa_challenges_token (token_hash),
    KEY ix_mfa_challenges_user (user_id),
    KEY ix_mfa_challenges_expiry (expires_at),
    CONSTRAINT fk_mfa_challenges_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- MFA policy per group: a member of any group with mfa_required must pass a second factor
-- (and enrol one at the next sign-in when there is none).
CREATE TABLE IF NOT EXISTS group_mfa_policy (
    group_id     BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    mfa_required BOOLEAN     NOT NULL DEFAULT FALSE,
    updated_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    CONSTRAINT fk_group_mfa_group FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
