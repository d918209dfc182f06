"""act_as_caller refuses a deactivated caller, so no statement sent after it runs for them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00+00:00

The application sends each statement of a caller behind `act_as_caller()` in one simple query
(one round trip, one implicit transaction). The function used to return a deactivated
caller's row and leave the refusal to the application, which then could only refuse after
the statement behind it had run; now it raises SQLSTATE GW403 (a class neither the SQL
standard nor PostgreSQL uses) before the acting user is set, which aborts the transaction and
every statement after it. The application answers that with the 403 it answered before.
"""

from collections.abc import Sequence

from alembic import context, op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0002's body with the refusal where the acting user used to be set for anyone.
ACT_AS_ACTIVE_CALLER = """
CREATE OR REPLACE FUNCTION act_as_caller(
    caller_issuer text, caller_subject text, caller_email text, caller_name text,
    caller_is_admin boolean, new_id uuid
) RETURNS SETOF users LANGUAGE plpgsql VOLATILE SECURITY INVOKER AS $$
DECLARE
    acting users;
BEGIN
    PERFORM set_config('app.current_issuer', caller_issuer, true),
            set_config('app.current_subject', caller_subject, true),
            set_config('app.acting_as_admin',
                       CASE WHEN caller_is_admin THEN 'on' ELSE '' END, true);
    SELECT * INTO acting FROM users WHERE issuer = caller_issuer AND subject = caller_subject;
    IF NOT FOUND THEN
        INSERT INTO users (id, version, created_at, updated_at, issuer, subject, email, full_name,
                           is_active)
        VALUES (new_id, 1, now(), now(), caller_issuer, caller_subject, caller_email, caller_name,
                true)
        ON CONFLICT (issuer, subject) DO NOTHING
        RETURNING * INTO acting;
        IF NOT FOUND THEN  -- a concurrent first request provisioned it
            SELECT * INTO acting FROM users
            WHERE issuer = caller_issuer AND subject = caller_subject;
        END IF;
    END IF;
    IF NOT acting.is_active THEN
        RAISE EXCEPTION 'the caller''s account is deactivated' USING ERRCODE = 'GW403';
    END IF;
    PERFORM set_config('app.current_user_id', acting.id::text, true);
    IF (caller_email IS NOT NULL AND caller_email IS DISTINCT FROM acting.email)
       OR (caller_name IS NOT NULL AND acting.full_name IS NULL) THEN
        UPDATE users
        SET email = coalesce(caller_email, email), full_name = coalesce(full_name, caller_name),
            version = version + 1, updated_at = now()
        WHERE id = acting.id
        RETURNING * INTO acting;
    END IF;
    RETURN NEXT acting;
END
$$
"""


def upgrade() -> None:
    # CREATE OR REPLACE keeps the function's grants (EXECUTE for the runtime role only).
    op.execute(ACT_AS_ACTIVE_CALLER)


def downgrade() -> None:
    identity = context.script.get_revision("0002")
    if identity is None:
        raise RuntimeError("revision 0002 is missing from the history")
    op.execute(
        identity.module.ACT_AS_CALLER.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    )
