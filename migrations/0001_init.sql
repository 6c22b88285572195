-- wsauthn's schema, version 1 (src/store/postgres/schema.rs applies it once, in a transaction,
-- under an advisory lock so that nodes starting together do not race).
--
-- Constraint names are part of the code: a violation of users_name_key means username_taken,
-- of credentials_pkey credential_in_use (src/store/postgres.rs).

CREATE TABLE users (
    id uuid NOT NULL,
    name text NOT NULL,
    -- The folded username (crate::names::username_key): one account per key.
    name_key text NOT NULL,
    display_name text NOT NULL,
    created_at bigint NOT NULL,
    passkeys integer NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_name_key UNIQUE (name_key)
);

CREATE TABLE credentials (
    -- The credential id: this primary key is the global credential-id index.
    id bytea NOT NULL,
    user_id uuid NOT NULL,
    -- The CredentialRecord as JSON, as registered.
    record text NOT NULL,
    -- What login.begin reads ({"key": PublicKey, "transports": …}), so it decodes no passkey.
    sign_in text NOT NULL,
    label text,
    -- What sign-ins change, as of the latest one (as registered until then).
    counter bigint NOT NULL,
    backup_eligible boolean NOT NULL,
    backup_state boolean NOT NULL,
    -- Unix seconds; 0: never.
    last_used_at bigint NOT NULL,
    CONSTRAINT credentials_pkey PRIMARY KEY (id),
    CONSTRAINT credentials_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX credentials_by_user ON credentials (user_id, id);

-- Sessions, keyed by the SHA-256 of their token (the token itself is never stored).
CREATE TABLE sessions (
    hash bytea NOT NULL,
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    expires_ms bigint NOT NULL,
    -- The SessionRecord as JSON.
    record text NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (hash)
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE recovery_sets (
    user_id uuid NOT NULL,
    -- The RecoverySet as JSON (Argon2id hashes only).
    codes text NOT NULL,
    CONSTRAINT recovery_sets_pkey PRIMARY KEY (user_id)
);

-- Each node's readiness probe writes its own row (/readyz).
CREATE TABLE probes (
    node uuid NOT NULL,
    at_ms bigint NOT NULL,
    CONSTRAINT probes_pkey PRIMARY KEY (node)
);
