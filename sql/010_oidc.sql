-- 010: OpenID Connect sign-in: the providers an admin configures, their group mappings, the
-- link from a provider's subject to a BIC user, and the short-lived state of a sign-in in
-- flight (state, nonce, PKCE verifier). See docs/oidc.md.

-- One identity provider. client_secret_enc is the client secret sealed with AES-256-GCM under
-- a key derived from [auth] secret_file and bound to the row's id (nonce 12 || ciphertext ||
-- tag 16 bytes); the API never returns it. ca_pem: the CA certificates (PEM) that the
-- provider's TLS certificate must chain to; NULL trusts the system's CAs. redirect_uri: the
-- exact callback address registered at the provider; '' derives it from [server]
-- public_origin or the host the browser used.
CREATE TABLE IF NOT EXISTS oidc_providers (
    id                 BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    name               VARCHAR(64)   NOT NULL,
    display_name       VARCHAR(128)  NOT NULL DEFAULT '',
    issuer             VARCHAR(512)  NOT NULL,
    client_id          VARCHAR(255)  NOT NULL,
    client_secret_enc  VARBINARY(600) NULL,
    token_auth         ENUM('client_secret_basic', 'client_secret_post', 'none') NOT NULL
                       DEFAULT 'client_secret_basic',
    scopes             VARCHAR(255)  NOT NULL DEFAULT 'openid profile email',
    username_claim     VARCHAR(64)   NOT NULL DEFAULT 'preferred_username',
    display_name_claim VARCHAR(64)   NOT NULL DEFAULT 'name',
    email_claim        VARCHAR(64)   NOT NULL DEFAULT 'email',
    groups_claim       VARCHAR(64)   NOT NULL DEFAULT 'groups',
    redirect_uri       VARCHAR(512)  NOT NULL DEFAULT '',
    ca_pem             TEXT          NULL,
    enabled            BOOLEAN       NOT NULL DEFAULT TRUE,
    created_at         DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at         DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_oidc_providers_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A value of the provider's groups claim that makes its user a member of a BIC group. At each
-- sign-in the user is added to the mapped groups whose value the token carries and removed
-- from the mapped groups whose values it does not; other memberships are left alone.
CREATE TABLE IF NOT EXISTS oidc_group_maps (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    provider_id BIGINT UNSIGNED NOT NULL,
    claim_value VARCHAR(255) NOT NULL,
    group_id    BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_oidc_group_maps (provider_id, claim_value, group_id),
    KEY ix_oidc_group_maps_group (group_id),
    CONSTRAINT fk_oidc_gm_provider FOREIGN KEY (provider_id) REFERENCES oidc_providers (id) ON DELETE CASCADE,
    CONSTRAINT fk_oidc_gm_group FOREIGN KEY (group_id) REFERENCES user_groups (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Which BIC user a provider's subject ("sub", stable at the provider) is. Made when the first
-- sign-in creates the user; a local account is never linked. A provider with linked users
-- cannot be deleted (RESTRICT): disable it instead.
CREATE TABLE IF NOT EXISTS oidc_identities (
    provider_id   BIGINT UNSIGNED NOT NULL,
    subject       VARCHAR(255) NOT NULL,
    user_id       BIGINT UNSIGNED NOT NULL,
    created_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    last_login_at DATETIME(3)  NULL,
    PRIMARY KEY (provider_id, subject),
    KEY ix_oidc_identities_user (user_id),
    CONSTRAINT fk_oidc_id_provider FOREIGN KEY (provider_id) REFERENCES oidc_providers (id),
    CONSTRAINT fk_oidc_id_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A sign-in in flight, from /auth/oidc/{id}/start to the callback: single use (used_at), short
-- lived (expires_at), bound to the browser that started it (sha256 of the __Host-bic_oidc
-- cookie). Only the sha256 of state is kept; nonce and the PKCE verifier are needed as they are
-- (the verifier is sent to the token endpoint, the nonce compared with the ID token's).
CREATE TABLE IF NOT EXISTS oidc_states (
    id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    state_hash   BINARY(32)   NOT NULL,
    provider_id  BIGINT UNSIGNED NOT NULL,
    binding_hash BINARY(32)   NOT NULL,
    nonce        CHAR(43)     NOT NULL,
    verifier     CHAR(43)     NOT NULL,
    redirect_uri VARCHAR(512) NOT NULL,
    portal       ENUM('user', 'admin') NOT NULL DEFAULT 'user',
    remote_addr  VARCHAR(45)  NOT NULL DEFAULT '',
    created_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at   DATETIME(3)  NOT NULL,
    used_at      DATETIME(3)  NULL,
    UNIQUE KEY uq_oidc_states_state (state_hash),
    KEY ix_oidc_states_expiry (expires_at),
    KEY ix_oidc_states_addr (remote_addr, expires_at),
    CONSTRAINT fk_oidc_states_provider FOREIGN KEY (provider_id) REFERENCES oidc_providers (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
