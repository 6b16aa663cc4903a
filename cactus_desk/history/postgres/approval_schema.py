"""The schema of maker-checker approvals and the audit trail, enforced by PostgreSQL itself.

One migration (``v_approvals``). The tables are written only by SECURITY DEFINER functions
that check ``session_user`` (which no client statement can change) and the login's team
roles, so a desk that skips the product's rules still cannot get around them:

- ``approval_policies`` (per profile and currency: one approval at or above ``approve_at``,
  two by different people at or above ``second_at``) and ``approver_limits`` (per login and
  currency) change only through ``cactus_set_policy`` / ``cactus_set_limit``, an admin's (or
  the owner's); nobody sets their own limit.
- ``approval_requests`` holds a payout AWAITING_APPROVAL; ``approvals`` one row per approver
  (the primary key makes the two approvals two different people).
- The gate trigger on ``payouts`` refuses a new attempt that its policy holds for approval
  unless this very login claimed that approved request for sending (``cactus_claim_send``,
  one winner), with the same body; an approver may only write the send columns of the
  payouts it created itself.
- ``audit_log`` is append-only for every team role (no privilege but SELECT); each row's
  ``hash`` covers its fields and the previous row's hash, so the owner's quiet edit breaks
  the chain that ``team audit verify`` checks.
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from cactus_desk.history.postgres.roles import APPROVER, MAKER

#: The advisory lock that orders audit rows ("audit" in ASCII).
AUDIT_LOCK = 0x6175646974
#: Where live views hear about approvals (``LISTEN``).
APPROVALS_CHANNEL = "cactus_approvals"
DEFAULT_EXPIRY_HOURS = 72
STATES = ("AWAITING_APPROVAL", "APPROVED", "REJECTED_BY_APPROVER", "WITHDRAWN", "SENDING", "SENT")

_TABLES = """
CREATE TABLE approval_policies (
    profile_id TEXT COLLATE "C" NOT NULL,
    currency TEXT COLLATE "C" NOT NULL,
    approve_at BIGINT NOT NULL CHECK (approve_at > 0),
    second_at BIGINT CHECK (second_at IS NULL OR second_at >= approve_at),
    expiry_hours INTEGER NOT NULL DEFAULT 72 CHECK (expiry_hours BETWEEN 1 AND 8760),
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (profile_id, currency)
);
CREATE TABLE approver_limits (
    login TEXT COLLATE "C" NOT NULL,
    currency TEXT COLLATE "C" NOT NULL,
    max_minor BIGINT NOT NULL CHECK (max_minor >= 0),
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL,
    PRIMARY KEY (login, currency),
    CHECK (login <> set_by)
);
CREATE TABLE approval_requests (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    maker TEXT NOT NULL,
    profile_id TEXT COLLATE "C" NOT NULL,
    profile_name TEXT COLLATE "C" NOT NULL,
    environment TEXT COLLATE "C" NOT NULL,
    merchant_id TEXT COLLATE "C" NOT NULL,
    site_id BIGINT NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL,
    site_login TEXT COLLATE "C" NOT NULL,
    method TEXT COLLATE "C" NOT NULL,
    currency TEXT COLLATE "C" NOT NULL,
    amount_minor BIGINT NOT NULL CHECK (amount_minor > 0),
    request_json TEXT NOT NULL,
    required SMALLINT NOT NULL CHECK (required IN (1, 2)),
    state TEXT COLLATE "C" NOT NULL CHECK (state IN ({states})),
    decided_by TEXT,
    decided_at BIGINT,
    reason TEXT NOT NULL DEFAULT '',
    send_claimed_by TEXT,
    send_claimed_at BIGINT,
    payout_id BIGINT REFERENCES payouts (id),
    CONSTRAINT approval_requests_request_unique UNIQUE (merchant_id, site_id, request_id)
);
CREATE INDEX approval_requests_by_state ON approval_requests (state, id);
CREATE TABLE approvals (
    approval_id BIGINT NOT NULL REFERENCES approval_requests (id),
    approver TEXT NOT NULL,
    note TEXT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);
CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at BIGINT NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    before JSONB,
    after JSONB,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""

# The hashed text: every field length-prefixed (no separator can be forged), NULL as "-".
# ``history.postgres.audit`` recomputes it in Python, independently of this function.
_AUDIT = """
CREATE FUNCTION cactus_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS $$
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint
$$;
CREATE FUNCTION cactus_audit_piece(value TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN value IS NULL THEN '-;' ELSE length(value) || ':' || value || ';' END
$$;
CREATE FUNCTION cactus_audit(p_action TEXT, p_subject TEXT, p_before JSONB, p_after JSONB)
RETURNS BIGINT LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
DECLARE
    last_seq BIGINT;
    last_hash TEXT;
    stamp BIGINT := cactus_now_ms();
    body TEXT;
BEGIN
    -- One writer at a time, until commit: the next row reads the committed last one.
    PERFORM pg_advisory_xact_lock({lock});
    SELECT seq, hash INTO last_seq, last_hash FROM audit_log ORDER BY seq DESC LIMIT 1;
    last_seq := coalesce(last_seq, 0) + 1;
    last_hash := coalesce(last_hash, '');
    body := cactus_audit_piece(last_hash) || cactus_audit_piece(last_seq::text)
        || cactus_audit_piece(stamp::text) || cactus_audit_piece(session_user::text)
        || cactus_audit_piece(p_action) || cactus_audit_piece(p_subject)
        || cactus_audit_piece(p_before::text) || cactus_audit_piece(p_after::text);
    INSERT INTO audit_log (seq, at, who, action, subject, before, after, prev_hash, hash)
        VALUES (last_seq, stamp, session_user, p_action, p_subject, p_before, p_after,
            last_hash, encode(sha256(convert_to(body, 'UTF8')), 'hex'));
    RETURN last_seq;
END
$$;
-- What a person does outside the database (an export) is noted by their own call.
CREATE FUNCTION cactus_audit_note(p_action TEXT, p_subject TEXT, p_details JSONB)
RETURNS BIGINT LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    IF p_action NOT IN ('export history', 'export audit') THEN
        RAISE EXCEPTION 'cactus: % is not an action a desk notes', p_action
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cactus_audit(p_action, p_subject, NULL, p_details);
END
$$;
"""

_DENIED = "insufficient_privilege"
_STATE = "object_not_in_prerequisite_state"


def _refuse(text: str, code: str = _DENIED, *args: str) -> str:
    extra = "".join(f", {arg}" for arg in args)
    return f"RAISE EXCEPTION 'cactus: {text}'{extra} USING ERRCODE = '{code}'"


_POLICY_FUNCTIONS = f"""
CREATE FUNCTION cactus_is_admin() RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
    -- The owner holds no team role; nobody else can call the functions that ask.
    SELECT cactus_session_roles() = '{{}}' OR 'cactus_admin' = ANY (cactus_session_roles())
$$;
CREATE FUNCTION cactus_required_approvals(p_profile TEXT, p_currency TEXT, p_amount BIGINT)
RETURNS INTEGER LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
    SELECT coalesce((SELECT CASE WHEN second_at IS NOT NULL AND p_amount >= second_at THEN 2
        WHEN p_amount >= approve_at THEN 1 ELSE 0 END FROM approval_policies
        WHERE profile_id = p_profile AND currency = p_currency), 0)
$$;
CREATE FUNCTION cactus_set_policy(p_profile TEXT, p_currency TEXT, p_approve_at BIGINT,
    p_second_at BIGINT, p_expiry_hours INTEGER)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    old_row JSONB;
    new_row JSONB;
BEGIN
    IF NOT cactus_is_admin() THEN
        {_refuse("only a team admin sets approval policies")};
    END IF;
    SELECT to_jsonb(p) INTO old_row FROM approval_policies p
        WHERE profile_id = p_profile AND currency = p_currency FOR UPDATE;
    INSERT INTO approval_policies AS p (profile_id, currency, approve_at, second_at,
            expiry_hours, updated_by, updated_at)
        VALUES (p_profile, p_currency, p_approve_at, p_second_at, p_expiry_hours, session_user,
            cactus_now_ms())
        ON CONFLICT (profile_id, currency) DO UPDATE SET approve_at = EXCLUDED.approve_at,
            second_at = EXCLUDED.second_at, expiry_hours = EXCLUDED.expiry_hours,
            updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
        RETURNING to_jsonb(p) INTO new_row;
    PERFORM cactus_audit('policy', p_profile || ' ' || p_currency, old_row, new_row);
END
$$;
CREATE FUNCTION cactus_set_limit(p_login TEXT, p_currency TEXT, p_max BIGINT)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    old_row JSONB;
    new_row JSONB;
BEGIN
    IF NOT cactus_is_admin() THEN
        {_refuse("only a team admin sets approval limits")};
    END IF;
    IF p_login = session_user THEN
        {_refuse("nobody sets their own approval limit")};
    END IF;
    SELECT to_jsonb(l) INTO old_row FROM approver_limits l
        WHERE login = p_login AND currency = p_currency FOR UPDATE;
    INSERT INTO approver_limits AS l (login, currency, max_minor, set_by, set_at)
        VALUES (p_login, p_currency, p_max, session_user, cactus_now_ms())
        ON CONFLICT (login, currency) DO UPDATE SET max_minor = EXCLUDED.max_minor,
            set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at
        RETURNING to_jsonb(l) INTO new_row;
    PERFORM cactus_audit('limit', p_login || ' ' || p_currency, old_row, new_row);
END
$$;
"""

_FLOW_FUNCTIONS = f"""
CREATE FUNCTION cactus_submit_payout(p_profile_id TEXT, p_profile_name TEXT,
    p_environment TEXT, p_merchant_id TEXT, p_site_id BIGINT, p_request_id TEXT,
    p_site_login TEXT, p_method TEXT, p_currency TEXT, p_amount BIGINT, p_request_json TEXT)
RETURNS BIGINT LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    body JSONB := p_request_json::jsonb;
    needed INTEGER := cactus_required_approvals(p_profile_id, p_currency, p_amount);
    hours INTEGER;
    stamp BIGINT := cactus_now_ms();
    made approval_requests;
BEGIN
    IF NOT '{MAKER}' = ANY (cactus_session_roles()) THEN
        {_refuse("only a maker submits payouts")};
    END IF;
    IF needed = 0 THEN
        {_refuse("this payout needs no approval; send it", "invalid_parameter_value")};
    END IF;
    IF body->>'merchant_id' IS DISTINCT FROM p_merchant_id
            OR (body->>'site_id')::bigint IS DISTINCT FROM p_site_id
            OR body->>'request_id' IS DISTINCT FROM p_request_id
            OR body->>'site_login' IS DISTINCT FROM p_site_login
            OR body->>'method' IS DISTINCT FROM p_method
            OR body->>'currency' IS DISTINCT FROM p_currency
            OR (body->>'amount')::bigint IS DISTINCT FROM p_amount THEN
        {_refuse("the request body does not match the payout", "invalid_parameter_value")};
    END IF;
    IF EXISTS (SELECT 1 FROM payouts WHERE merchant_id = p_merchant_id AND site_id = p_site_id
            AND request_id = p_request_id) THEN
        {_refuse("request id % is already in the history", "unique_violation", "p_request_id")};
    END IF;
    SELECT expiry_hours INTO hours FROM approval_policies
        WHERE profile_id = p_profile_id AND currency = p_currency;
    INSERT INTO approval_requests (created_at, expires_at, maker, profile_id, profile_name,
            environment, merchant_id, site_id, request_id, site_login, method, currency,
            amount_minor, request_json, required, state)
        VALUES (stamp, stamp + hours::bigint * 3600000, session_user,
            p_profile_id, p_profile_name, p_environment, p_merchant_id, p_site_id,
            p_request_id, p_site_login, p_method, p_currency, p_amount, p_request_json,
            needed, 'AWAITING_APPROVAL')
        RETURNING * INTO made;
    PERFORM cactus_audit('submit', 'approval ' || made.id, NULL, to_jsonb(made));
    PERFORM pg_notify('{APPROVALS_CHANNEL}', made.id::text);
    RETURN made.id;
END
$$;
CREATE FUNCTION cactus_pending(p_id BIGINT) RETURNS approval_requests
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    req approval_requests;
BEGIN
    SELECT * INTO req FROM approval_requests WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        {_refuse("no approval request %", "no_data_found", "p_id")};
    END IF;
    IF req.state <> 'AWAITING_APPROVAL' THEN
        {_refuse("approval request % is %, not awaiting approval", _STATE, "p_id", "req.state")};
    END IF;
    IF req.expires_at <= cactus_now_ms() THEN
        {_refuse("approval request % expired", _STATE, "p_id")};
    END IF;
    RETURN req;
END
$$;
CREATE FUNCTION cactus_approve_payout(p_id BIGINT, p_note TEXT)
RETURNS TEXT LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    pending approval_requests;
    allowed BIGINT;
    given INTEGER;
    outcome TEXT := 'AWAITING_APPROVAL';
BEGIN
    IF NOT '{APPROVER}' = ANY (cactus_session_roles()) THEN
        {_refuse("only an approver approves payouts")};
    END IF;
    IF coalesce(btrim(p_note), '') = '' THEN
        {_refuse("an approval needs a note", "invalid_parameter_value")};
    END IF;
    pending := cactus_pending(p_id);
    IF pending.maker = session_user THEN
        {_refuse("nobody approves their own payout")};
    END IF;
    IF EXISTS (SELECT 1 FROM approvals WHERE approval_id = p_id AND approver = session_user) THEN
        {_refuse("you approved this payout already; the second approval is another approver")};
    END IF;
    SELECT max_minor INTO allowed FROM approver_limits
        WHERE login = session_user AND currency = pending.currency;
    IF allowed IS NULL OR allowed < pending.amount_minor THEN
        {_refuse("the amount is over your approval limit in %", _DENIED, "pending.currency")};
    END IF;
    INSERT INTO approvals (approval_id, approver, note, approved_at)
        VALUES (p_id, session_user, p_note, cactus_now_ms());
    SELECT count(*) INTO given FROM approvals WHERE approval_id = p_id;
    IF given >= pending.required THEN
        outcome := 'APPROVED';
        UPDATE approval_requests SET state = outcome, decided_by = session_user,
            decided_at = cactus_now_ms() WHERE id = p_id;
    END IF;
    PERFORM cactus_audit('approve', 'approval ' || p_id, jsonb_build_object('state',
        pending.state), jsonb_build_object('state', outcome, 'note', p_note,
        'approvals', given, 'required', pending.required));
    PERFORM pg_notify('{APPROVALS_CHANNEL}', p_id::text);
    RETURN outcome;
END
$$;
CREATE FUNCTION cactus_reject_payout(p_id BIGINT, p_reason TEXT)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    pending approval_requests;
BEGIN
    IF NOT '{APPROVER}' = ANY (cactus_session_roles()) THEN
        {_refuse("only an approver rejects payouts")};
    END IF;
    IF coalesce(btrim(p_reason), '') = '' THEN
        {_refuse("a rejection needs a reason", "invalid_parameter_value")};
    END IF;
    pending := cactus_pending(p_id);
    IF pending.maker = session_user THEN
        {_refuse("nobody decides on their own payout; withdraw it instead")};
    END IF;
    UPDATE approval_requests SET state = 'REJECTED_BY_APPROVER', decided_by = session_user,
        decided_at = cactus_now_ms(), reason = p_reason WHERE id = p_id;
    PERFORM cactus_audit('reject', 'approval ' || p_id, jsonb_build_object('state',
        pending.state), jsonb_build_object('state', 'REJECTED_BY_APPROVER', 'reason', p_reason));
    PERFORM pg_notify('{APPROVALS_CHANNEL}', p_id::text);
END
$$;
CREATE FUNCTION cactus_withdraw_payout(p_id BIGINT)
RETURNS VOID LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    req approval_requests;
BEGIN
    SELECT * INTO req FROM approval_requests WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        {_refuse("no approval request %", "no_data_found", "p_id")};
    END IF;
    IF req.maker <> session_user THEN
        {_refuse("only the maker withdraws a payout")};
    END IF;
    IF req.state <> 'AWAITING_APPROVAL' THEN
        {
    _refuse("approval request % is %, it can no longer be withdrawn", _STATE, "p_id", "req.state")
};
    END IF;
    UPDATE approval_requests SET state = 'WITHDRAWN', decided_by = session_user,
        decided_at = cactus_now_ms() WHERE id = p_id;
    PERFORM cactus_audit('withdraw', 'approval ' || p_id, jsonb_build_object('state',
        req.state), jsonb_build_object('state', 'WITHDRAWN'));
    PERFORM pg_notify('{APPROVALS_CHANNEL}', p_id::text);
END
$$;
-- The one winner: an approved request moves to SENDING for exactly one login.
CREATE FUNCTION cactus_claim_send(p_id BIGINT) RETURNS approval_requests
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {{schema}}, pg_temp AS $$
DECLARE
    claimed approval_requests;
    current_state TEXT;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM approval_requests r WHERE r.id = p_id
            AND (r.maker = session_user OR EXISTS (SELECT 1 FROM approvals a
                WHERE a.approval_id = r.id AND a.approver = session_user))) THEN
        {_refuse("only the maker or an approver of request % sends it", _DENIED, "p_id")};
    END IF;
    UPDATE approval_requests SET state = 'SENDING', send_claimed_by = session_user,
        send_claimed_at = cactus_now_ms() WHERE id = p_id AND state = 'APPROVED'
        RETURNING * INTO claimed;
    IF NOT FOUND THEN
        SELECT state INTO current_state FROM approval_requests WHERE id = p_id;
        {
    _refuse(
        "approval request % is %, not approved and waiting to be sent",
        _STATE,
        "p_id",
        "current_state",
    )
};
    END IF;
    PERFORM cactus_audit('claim send', 'approval ' || p_id, jsonb_build_object('state',
        'APPROVED'), jsonb_build_object('state', 'SENDING'));
    RETURN claimed;
END
$$;
"""

_GATE = f"""
CREATE FUNCTION cactus_claimed_for(p payouts) RETURNS BIGINT LANGUAGE sql STABLE AS $$
    SELECT id FROM approval_requests r WHERE r.merchant_id = p.merchant_id
        AND r.site_id = p.site_id AND r.request_id = p.request_id AND r.state = 'SENDING'
        AND r.send_claimed_by = session_user AND r.payout_id IS NULL
        AND r.profile_id = p.profile_id AND r.currency = p.currency
        AND r.amount_minor = p.amount_minor AND r.site_login = p.site_login
        AND r.method = p.method AND r.request_json::jsonb = p.request_json::jsonb
$$;
CREATE FUNCTION cactus_approval_gate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    roles TEXT[] := cactus_session_roles();
    needed INTEGER;
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
    IF (needed > 0 OR (roles <> '{{}}' AND NOT '{MAKER}' = ANY (roles)))
            AND cactus_claimed_for(NEW) IS NULL THEN
        {
    _refuse(
        "this payout needs % approval(s) before it is sent: submit it for approval",
        _DENIED,
        "needed",
    )
};
    END IF;
    RETURN NEW;
END
$$;
CREATE FUNCTION cactus_approval_sent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    claim BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.imported_at IS NOT NULL THEN
            RETURN NULL;
        END IF;
        claim := cactus_claimed_for(NEW);
        IF claim IS NOT NULL THEN
            UPDATE approval_requests SET state = 'SENT', payout_id = NEW.id WHERE id = claim;
            PERFORM pg_notify('{APPROVALS_CHANNEL}', claim::text);
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
CREATE TRIGGER payouts_approval_gate BEFORE INSERT OR UPDATE ON payouts
    FOR EACH ROW EXECUTE FUNCTION cactus_approval_gate();
CREATE TRIGGER payouts_approval_sent AFTER INSERT ON payouts
    FOR EACH ROW EXECUTE FUNCTION cactus_approval_sent();
CREATE TRIGGER payouts_settled_audit AFTER UPDATE OF status_source ON payouts
    FOR EACH ROW WHEN (NEW.status_source = 'manual' AND OLD.status_source <> 'manual')
    EXECUTE FUNCTION cactus_approval_sent();
"""

# A login made by an admin is an audited user change: the v3 function keeps its body under
# another name (granted to nobody) and the public name wraps it with the audit row.
_AUDITED_ADD_USER = """
ALTER FUNCTION cactus_add_user(TEXT, TEXT, TEXT) RENAME TO cactus_add_user_unaudited;
CREATE FUNCTION cactus_add_user(login TEXT, team_role TEXT, verifier TEXT) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    PERFORM cactus_add_user_unaudited(login, team_role, verifier);
    PERFORM cactus_audit('add user', login, NULL, jsonb_build_object('role', team_role));
END
$$;
"""

# Only a maker records a new payout, or an approver one it claimed for sending (the gate
# checks the claim): the v3 stamp with that one change.
_STAMP_PAYOUT = """
CREATE OR REPLACE FUNCTION cactus_stamp_payout() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = {schema}, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.imported_at IS NULL AND cactus_session_roles() <> '{{}}'
                AND NOT 'cactus_maker' = ANY (cactus_session_roles())
                AND cactus_claimed_for(NEW) IS NULL THEN
            RAISE EXCEPTION 'only a maker may record a new payout'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        NEW.created_by := session_user;
        IF NEW.imported_at IS NULL THEN
            NEW.imported_by := NULL;
        ELSE
            NEW.imported_at := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
            NEW.imported_by := session_user;
        END IF;
    ELSE
        NEW.created_by := OLD.created_by;
        NEW.imported_at := OLD.imported_at;
        NEW.imported_by := OLD.imported_by;
        IF NEW.status_source = 'manual' AND OLD.status_source IS DISTINCT FROM 'manual'
                AND cactus_session_roles() <> '{{}}'
                AND NOT cactus_session_roles() && ARRAY['cactus_maker', 'cactus_approver'] THEN
            RAISE EXCEPTION 'the receiver may not settle payouts by hand'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END
$$
"""


def v_approvals(conn: psycopg.Connection) -> None:
    """Approval policies, approver limits, payouts awaiting approval, the gate that holds
    them back from sending, and the hash-chained audit trail."""
    cursor = conn.cursor(row_factory=tuple_row)
    row = cursor.execute("SELECT current_schema()").fetchone()
    schema = sql.Identifier(str(row[0])).as_string(conn) if row else "public"
    states = ", ".join(f"'{state}'" for state in STATES)
    conn.execute(_TABLES.replace("{states}", states))
    conn.execute(_AUDIT.format(schema=schema, lock=AUDIT_LOCK))
    conn.execute(_POLICY_FUNCTIONS.replace("{schema}", schema))
    conn.execute(_FLOW_FUNCTIONS.replace("{schema}", schema))
    conn.execute(_GATE)
    conn.execute(_STAMP_PAYOUT.format(schema=schema))
    for function in (
        "cactus_approval_gate()",
        "cactus_approval_sent()",
        "cactus_claimed_for(payouts)",
        "cactus_is_admin()",
    ):
        conn.execute(
            f"ALTER FUNCTION {function} SECURITY DEFINER SET search_path = {schema}, pg_temp"
        )
    conn.execute(_AUDITED_ADD_USER.format(schema=schema))
