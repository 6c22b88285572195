-- Version 4: the revocation log in commit order.
--
-- A node reads the log from the last sequence number it applied. Sequence numbers are handed
-- out as rows are inserted, not as transactions commit: a transaction that took number 10 and
-- committed after another that took 11 would be skipped by a node that had read 11 already, and
-- its revocations lost there. So a transaction that writes the log takes this
-- transaction-level advisory lock (33622457394294635, "wsrevok" in ASCII) before its first log
-- row and holds it until it commits: such transactions commit one after another, in the order
-- of their numbers. wsauthn's own revoking transactions take the lock before any row lock, so
-- they cannot deadlock each other; this trigger takes it too, for any other path (an
-- operator's DELETE).

CREATE OR REPLACE FUNCTION wsauthn_session_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_advisory_xact_lock(33622457394294635);
        INSERT INTO revocations (hash, session_id, ended) VALUES (OLD.hash, OLD.id, true);
    ELSIF OLD.hash IS DISTINCT FROM NEW.hash THEN
        PERFORM pg_advisory_xact_lock(33622457394294635);
        INSERT INTO revocations (hash, session_id, ended) VALUES (OLD.hash, OLD.id, false);
    END IF;
    RETURN NULL;
END;
$$;
