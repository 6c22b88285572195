-- Version 3: the HTTP mirror's ceremonies, shared by every node (docs/cluster.md), so that a
-- `/api/*/begin` on one node and its `/finish` on another work together.
--
-- A row is the server-side half of one ceremony: its state (JSON, never sent to a client),
-- which `finish` it expects, the client address that began it (for the per-address share) and
-- when it was begun and expires, in milliseconds of the beginning node's clock. `finish` takes
-- it with `DELETE … RETURNING`, so of any number of nodes at most one gets it. Expired rows are
-- pruned by the revocation feed's housekeeping.

CREATE TABLE ceremonies (
    id uuid NOT NULL,
    -- 0: register, 1: login (with a username or usernameless).
    kind smallint NOT NULL,
    -- The client address key (IPv6 by /64), or NULL when unknown.
    owner text,
    begun_ms bigint NOT NULL,
    expires_ms bigint NOT NULL,
    state text NOT NULL,
    CONSTRAINT ceremonies_pkey PRIMARY KEY (id)
);
CREATE INDEX ceremonies_by_owner ON ceremonies (owner, expires_ms);
CREATE INDEX ceremonies_by_expiry ON ceremonies (expires_ms);
