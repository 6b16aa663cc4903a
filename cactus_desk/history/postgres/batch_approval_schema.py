"""A batch held for approval as one unit, enforced by PostgreSQL (migration ``v_batch_approvals``).

A maker submits a whole batch (``cactus_submit_batch``): one ``approval_requests`` row with
``batch_id`` set, the batch's totals per currency (``approval_batch_totals``) and every row's
exact request body (``approval_batch_rows``); nothing is sent. The policy is judged on each
currency's total (a total at or above the threshold holds the batch; a row above it makes its
currency's total so too). Approving, rejecting, withdrawing, expiry and the send claim are the
single payout's functions, with two additions:

- ``cactus_approve_payout`` also checks the approver's limit against every currency's total;
- the gate on ``payouts`` holds every row of a submitted batch, whatever its own amount, until
  that very login claimed the approved batch for sending (``cactus_claimed_for`` now matches
  a claimed batch's rows, body for body), and the request becomes SENT once its last row is
  recorded.

The rows of a rejected, withdrawn or expired batch can therefore never be recorded, so never
sent; and the same batch (same file, same profile) cannot be submitted twice.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from cactus_desk.history.postgres.approval_schema import APPROVALS_CHANNEL, _refuse
from cactus_desk.history.postgres.roles import ADMIN, APPROVER, GROUP_ROLES, MAKER, VIEWER

#: What a batch request's ``request_id`` is: a space never appears in a payout's request id.
BATCH_REQUEST_PREFIX = "batch "
BATCH_METHOD = "batch"
_STATE = "object_not_in_prerequisite_state"
_BAD = "invalid_parameter_value"
_DENIED = "insufficient_privilege"

_TABLES = """
ALTER TABLE approval_requests ADD COLUMN batch_id TEXT COLLATE "C";
CREATE TABLE approval_batch_totals (
    approval_id BIGINT NOT NULL REFERENCES approval_requests (id),
    currency TEXT COLLATE "C" NOT NULL,
    row_count INTEGER NOT NULL CHECK (row_count > 0),
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    required SMALLINT NOT NULL CHECK (required IN (0, 1, 2)),
    PRIMARY KEY (approval_id, currency)
);
CREATE TABLE approval_batch_rows (
    approval_id BIGINT NOT NULL REFERENCES approval_requests (id),
    line INTEGER NOT NULL CHECK (line > 0),
    merchant_id TEXT COLLATE "C" NOT NULL,
    site_id BIGINT NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL,
    site_login TEXT COLLATE "C" NOT NULL,
    method TEXT COLLATE "C" NOT NULL,
    currency TEXT COLLATE "C" NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    request_json TEXT NOT NULL,
    PRIMARY KEY (approval_id, line),
    CONSTRAINT approval_batch_rows_request_unique UNIQUE (merchant_id, site_id, request_id)
);
"""

_SUBMIT = f"""
CREATE FUNCTION cactus_batch_input(p_rows JSONB)
RETURNS TABLE (line INTEGER, request_json TEXT, body JSONB) LANGUAGE sql IMMUTABLE AS $$
    SELECT (e->>'line')::integer, e->>'body', (e->>'body')::jsonb
        FROM jsonb_array_elements(p_rows) e
$$;
CREATE FUNCTION cactus_submit_batch(p_profile_id TEXT, p_profile_name TEXT,
    p_environment TEXT, p_merchant_id TEXT, p_site_id BIGINT, p_batch_id TEXT, p_details JSONB,
    p_rows JSONB)
RETURNS BIGINT LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    needed INTEGER;
    hours INTEGER;
    stamp BIGINT := cactus_now_ms();
    made approval_requests;
    deciding RECORD;
    earlier approval_requests;
    taken TEXT;
BEGIN
    IF NOT '{MAKER}' = ANY (cactus_session_roles()) THEN
        {_refuse("only a maker submits batches")};
    END IF;
    IF p_batch_id IS NULL OR p_batch_id !~ '^[0-9a-f]{{12}}$' THEN
        {_refuse("% is not a batch id", _BAD, "p_batch_id")};
    END IF;
    IF jsonb_typeof(p_rows) IS DISTINCT FROM 'array' OR jsonb_array_length(p_rows) = 0 THEN
        {_refuse("a batch needs at least one row", _BAD)};
    END IF;
    SELECT * INTO earlier FROM approval_requests WHERE batch_id = p_batch_id
        AND merchant_id = p_merchant_id AND site_id = p_site_id ORDER BY id DESC LIMIT 1;
    IF FOUND THEN
        {
    _refuse(
        "batch % was submitted for approval before, as request % (%); it is not submitted again",
        "unique_violation",
        "p_batch_id",
        "earlier.id",
        "earlier.state",
    )
};
    END IF;
    IF EXISTS (SELECT 1 FROM cactus_batch_input(p_rows) WHERE line IS NULL OR line <= 0
            OR body->>'merchant_id' IS DISTINCT FROM p_merchant_id
            OR (body->>'site_id')::bigint IS DISTINCT FROM p_site_id
            OR coalesce(body->>'request_id', '') = '' OR body->>'site_login' IS NULL
            OR body->>'method' IS NULL OR body->>'currency' IS NULL
            OR coalesce((body->>'amount')::bigint, 0) <= 0) THEN
        {_refuse("the request body of a row does not match the profile of the batch", _BAD)};
    END IF;
    SELECT i.body->>'request_id' INTO taken FROM cactus_batch_input(p_rows) i
        WHERE EXISTS (SELECT 1 FROM payouts p WHERE p.merchant_id = p_merchant_id
            AND p.site_id = p_site_id AND p.request_id = i.body->>'request_id')
        OR EXISTS (SELECT 1 FROM approval_batch_rows b WHERE b.merchant_id = p_merchant_id
            AND b.site_id = p_site_id AND b.request_id = i.body->>'request_id')
        LIMIT 1;
    IF taken IS NOT NULL THEN
        {_refuse("request id % is already in the history", "unique_violation", "taken")};
    END IF;
    -- The policy judges each currency's total; the currency needing most approvals decides.
    SELECT body->>'currency' AS currency, count(*)::integer AS row_count,
            sum((body->>'amount')::bigint)::bigint AS total,
            cactus_required_approvals(p_profile_id, body->>'currency',
                sum((body->>'amount')::bigint)::bigint) AS required
        INTO deciding FROM cactus_batch_input(p_rows) GROUP BY body->>'currency'
        ORDER BY 4 DESC, 1 LIMIT 1;
    needed := deciding.required;
    IF needed = 0 THEN
        {_refuse("this batch needs no approval; send it", _BAD)};
    END IF;
    SELECT min(expiry_hours) INTO hours FROM approval_policies WHERE profile_id = p_profile_id
        AND currency IN (SELECT DISTINCT body->>'currency' FROM cactus_batch_input(p_rows));
    INSERT INTO approval_requests (created_at, expires_at, maker, profile_id, profile_name,
            environment, merchant_id, site_id, request_id, site_login, method, currency,
            amount_minor, request_json, required, state, batch_id)
        VALUES (stamp, stamp + hours::bigint * 3600000, session_user, p_profile_id,
            p_profile_name, p_environment, p_merchant_id, p_site_id,
            '{BATCH_REQUEST_PREFIX}' || p_batch_id, '', '{BATCH_METHOD}', deciding.currency,
            deciding.total, coalesce(p_details, '{{}}'::jsonb)::text, needed,
            'AWAITING_APPROVAL', p_batch_id)
        RETURNING * INTO made;
    INSERT INTO approval_batch_rows (approval_id, line, merchant_id, site_id, request_id,
            site_login, method, currency, amount_minor, request_json)
        SELECT made.id, line, p_merchant_id, p_site_id, body->>'request_id',
            body->>'site_login', body->>'method', body->>'currency',
            (body->>'amount')::bigint, request_json FROM cactus_batch_input(p_rows);
    INSERT INTO approval_batch_totals (approval_id, currency, row_count, amount_minor, required)
        SELECT made.id, body->>'currency', count(*), sum((body->>'amount')::bigint),
            cactus_required_approvals(p_profile_id, body->>'currency',
                sum((body->>'amount')::bigint)::bigint)
        FROM cactus_batch_input(p_rows) GROUP BY body->>'currency';
    PERFORM cactus_audit('submit batch', 'approval ' || made.id, NULL, to_jsonb(made)
        || jsonb_build_object('totals', (SELECT jsonb_object_agg(currency,
            jsonb_build_object('rows', row_count, 'amount_minor', amount_minor))
            FROM approval_batch_totals WHERE approval_id = made.id)));
    PERFORM pg_notify('{APPROVALS_CHANNEL}', made.id::text);
    RETURN made.id;
END
$$;
"""

# The v_approvals approval keeps its body under another name (granted to nobody); the public
# name adds the batch's limit check: every currency's total within this approver's limit.
_APPROVE = f"""
ALTER FUNCTION cactus_approve_payout(BIGINT, TEXT) RENAME TO cactus_approve_one;
CREATE FUNCTION cactus_approve_payout(p_id BIGINT, p_note TEXT)
RETURNS TEXT LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    outcome TEXT := cactus_approve_one(p_id, p_note);
    over TEXT;
BEGIN
    SELECT t.currency INTO over FROM approval_batch_totals t LEFT JOIN approver_limits l
        ON l.login = session_user AND l.currency = t.currency
        WHERE t.approval_id = p_id AND (l.max_minor IS NULL OR l.max_minor < t.amount_minor)
        ORDER BY t.currency LIMIT 1;
    IF over IS NOT NULL THEN
        {_refuse("the batch total in % is over your approval limit", _DENIED, "over")};
    END IF;
    RETURN outcome;
END
$$;
"""

_GATE = f"""
CREATE OR REPLACE FUNCTION cactus_claimed_for(p payouts) RETURNS BIGINT LANGUAGE sql STABLE
SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
    SELECT coalesce((SELECT id FROM approval_requests r WHERE r.batch_id IS NULL
        AND r.merchant_id = p.merchant_id
        AND r.site_id = p.site_id AND r.request_id = p.request_id AND r.state = 'SENDING'
        AND r.send_claimed_by = session_user AND r.payout_id IS NULL
        AND r.profile_id = p.profile_id AND r.currency = p.currency
        AND r.amount_minor = p.amount_minor AND r.site_login = p.site_login
        AND r.method = p.method AND r.request_json::jsonb = p.request_json::jsonb),
    (SELECT r.id FROM approval_batch_rows b JOIN approval_requests r ON r.id = b.approval_id
        WHERE b.merchant_id = p.merchant_id AND b.site_id = p.site_id
        AND b.request_id = p.request_id AND r.state = 'SENDING'
        AND r.send_claimed_by = session_user AND r.profile_id = p.profile_id
        AND b.currency = p.currency AND b.amount_minor = p.amount_minor
        AND b.site_login = p.site_login AND b.method = p.method
        AND b.request_json::jsonb = p.request_json::jsonb))
$$;
CREATE OR REPLACE FUNCTION cactus_approval_gate() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    roles TEXT[] := cactus_session_roles();
    needed INTEGER;
    held INTEGER;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- An approver sends only what it claimed; the send columns of others' are not theirs.
        IF roles <> '{{}}' AND NOT '{MAKER}' = ANY (roles) AND OLD.created_by <> session_user
                AND (NEW.send_attempts, NEW.sending_started_at, NEW.http_status,
                    NEW.response_json) IS DISTINCT FROM (OLD.send_attempts,
                    OLD.sending_started_at, OLD.http_status, OLD.response_json) THEN
            {_refuse("only the desk that sends a payout records its sending")};
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.imported_at IS NOT NULL THEN
        RETURN NEW;  -- a copy of a desk's past history (an admin's import), not a send
    END IF;
    needed := cactus_required_approvals(NEW.profile_id, NEW.currency, NEW.amount_minor);
    -- A row of a batch submitted for approval waits for the batch, whatever its own amount.
    SELECT r.required INTO held FROM approval_batch_rows b
        JOIN approval_requests r ON r.id = b.approval_id
        WHERE b.merchant_id = NEW.merchant_id AND b.site_id = NEW.site_id
        AND b.request_id = NEW.request_id;
    needed := greatest(needed, coalesce(held, 0));
    IF (needed > 0 OR (roles <> '{{}}' AND NOT '{MAKER}' = ANY (roles)))
            AND cactus_claimed_for(NEW) IS NULL THEN
        {
    _refuse(
        "this payout needs % approval(s) before it is sent: submit it for approval",
        "insufficient_privilege",
        "needed",
    )
};
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION cactus_approval_sent() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    claim BIGINT;
    claimed approval_requests;
    unrecorded INTEGER;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.imported_at IS NOT NULL THEN
            RETURN NULL;
        END IF;
        claim := cactus_claimed_for(NEW);
        IF claim IS NOT NULL THEN
            -- The lock orders a batch's rows: the last one recorded sees all the others.
            SELECT * INTO claimed FROM approval_requests WHERE id = claim FOR UPDATE;
            IF claimed.batch_id IS NULL THEN
                UPDATE approval_requests SET state = 'SENT', payout_id = NEW.id WHERE id = claim;
                PERFORM pg_notify('{APPROVALS_CHANNEL}', claim::text);
            ELSE
                SELECT count(*) INTO unrecorded FROM approval_batch_rows b
                    WHERE b.approval_id = claim AND NOT EXISTS (SELECT 1 FROM payouts p
                        WHERE p.merchant_id = b.merchant_id AND p.site_id = b.site_id
                        AND p.request_id = b.request_id);
                IF unrecorded = 0 THEN
                    UPDATE approval_requests SET state = 'SENT' WHERE id = claim;
                    PERFORM pg_notify('{APPROVALS_CHANNEL}', claim::text);
                END IF;
            END IF;
        END IF;
        PERFORM cactus_audit('send', 'payout ' || NEW.id, NULL, jsonb_build_object(
            'request_id', NEW.request_id, 'amount_minor', NEW.amount_minor,
            'currency', NEW.currency, 'profile_id', NEW.profile_id, 'approval', claim));
    ELSE
        PERFORM cactus_audit('settle by hand', 'payout ' || NEW.id,
            jsonb_build_object('state', OLD.state, 'status_source', OLD.status_source),
            jsonb_build_object('state', NEW.state, 'message', NEW.message));
    END IF;
    RETURN NULL;
END
$$;
"""

#: Functions of this migration nobody but the owner (and the functions) may call.
_PRIVATE = ("cactus_approve_one(BIGINT, TEXT)", "cactus_batch_input(JSONB)")
#: What the upgraded database grants at once (``team init`` applies ``roles.PRIVILEGES``).
_GRANTS = (
    ("FUNCTION cactus_submit_batch(TEXT, TEXT, TEXT, TEXT, BIGINT, TEXT, JSONB, JSONB)", MAKER),
    ("FUNCTION cactus_approve_payout(BIGINT, TEXT)", APPROVER),
)


def v_batch_approvals(conn: psycopg.Connection) -> None:
    """Batches submitted for approval as one request, their rows held by the gate until the
    approved batch is claimed for sending."""
    cursor = conn.cursor(row_factory=tuple_row)
    row = cursor.execute("SELECT current_schema()").fetchone()
    schema = sql.Identifier(str(row[0])).as_string(conn) if row else "public"
    conn.execute(_TABLES)
    conn.execute(_SUBMIT.replace("{schema}", schema))
    conn.execute(_APPROVE.replace("{schema}", schema))
    conn.execute(_GATE.replace("{schema}", schema))
    existing = {
        name
        for (name,) in cursor.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY (%s)", (list(GROUP_ROLES),)
        ).fetchall()
    }
    everyone = sql.SQL(", ").join([sql.SQL("PUBLIC"), *map(sql.Identifier, sorted(existing))])
    for function in (*_PRIVATE, *(name.removeprefix("FUNCTION ") for name, _ in _GRANTS)):
        conn.execute(
            sql.SQL("REVOKE ALL ON FUNCTION {} FROM {}").format(sql.SQL(function), everyone)
        )
    for name, role in _GRANTS:
        if role in existing:
            conn.execute(
                sql.SQL("GRANT EXECUTE ON {} TO {}").format(sql.SQL(name), sql.Identifier(role))
            )
    for table in ("approval_batch_totals", "approval_batch_rows"):
        for role in sorted(existing & {VIEWER, MAKER, APPROVER, ADMIN}):
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.Identifier(table), sql.Identifier(role)
                )
            )
    if APPROVER in existing:  # the approving desk records the batch it sends
        conn.execute(
            "GRANT INSERT (merchant_id, site_id, batch_id, profile_id, file_sha256, file_name, "
            f"row_count, parent, created_at) ON batches TO {APPROVER}"
        )
