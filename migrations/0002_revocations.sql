-- Version 2: the revocation log every node replays (docs/cluster.md).
--
-- A session row that goes (revocation, logout, expiry, user deletion: any DELETE) or whose
-- token is replaced (refresh: an UPDATE of hash) writes a row here in the same transaction, and
-- the statement notifies `wsauthn_revocations` (delivered at commit). A node LISTENs; on a
-- notification, and whenever its listening connection comes back, it reads the log from the
-- last sequence number it has seen, so a notification lost while it was disconnected loses
-- nothing.

CREATE TABLE revocations (
    seq bigserial NOT NULL,
    -- The token hash that stopped working.
    hash bytea NOT NULL,
    session_id uuid NOT NULL,
    -- true: the session ended (its sockets close with 4401); false: only its token was
    -- replaced (refresh; its sockets carry on).
    ended boolean NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT revocations_pkey PRIMARY KEY (seq)
);
CREATE INDEX revocations_by_time ON revocations (at);

CREATE FUNCTION wsauthn_session_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO revocations (hash, session_id, ended) VALUES (OLD.hash, OLD.id, true);
    ELSIF OLD.hash IS DISTINCT FROM NEW.hash THEN
        INSERT INTO revocations (hash, session_id, ended) VALUES (OLD.hash, OLD.id, false);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION wsauthn_notify_revocations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wsauthn_revocations', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_gone AFTER DELETE OR UPDATE OF hash ON sessions
    FOR EACH ROW EXECUTE FUNCTION wsauthn_session_gone();
CREATE TRIGGER sessions_gone_notify AFTER DELETE OR UPDATE OF hash ON sessions
    FOR EACH STATEMENT EXECUTE FUNCTION wsauthn_notify_revocations();
