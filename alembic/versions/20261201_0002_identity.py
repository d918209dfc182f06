"""users keyed on their OpenID identity; row-level security on users; the caller function

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:00:00+00:00

A user is `(issuer, subject)` from the access token, never an email (OIDC Core 5.7): emails
stop being unique and, like names, become optional (a machine client has neither). Rows
created before identity existed keep NULL there and cannot sign in until linked (README,
"Authentication"). Every transaction of the API starts with `act_as_caller()`, which finds or
provisions the caller's row and sets the acting user the policies read.
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Transaction-local settings (set_config(..., true)); unset, each reads as NULL or ''.
ACTING_USER = "NULLIF(current_setting('app.current_user_id', true), '')::uuid"
ACTING_AS_ADMIN = "coalesce(current_setting('app.acting_as_admin', true), '') = 'on'"
CALLER_IDENTITY = (
    "(issuer = current_setting('app.current_issuer', true)"
    " AND subject = current_setting('app.current_subject', true))"
)

USER_POLICIES = {
    # The caller's own row (found by identity before its id is known), or any row for an admin.
    "users_select": (
        f"FOR SELECT USING (id = {ACTING_USER} OR {CALLER_IDENTITY} OR {ACTING_AS_ADMIN})"
    ),
    "users_insert": f"FOR INSERT WITH CHECK ({CALLER_IDENTITY} OR {ACTING_AS_ADMIN})",
    # A user may change their own row while active, and never its identity or its activity:
    # deactivating, reactivating and relinking are an admin's.
    "users_update": (
        f"FOR UPDATE USING ({ACTING_AS_ADMIN} OR (id = {ACTING_USER} AND is_active))"
        f" WITH CHECK ({ACTING_AS_ADMIN}"
        f" OR (id = {ACTING_USER} AND is_active AND {CALLER_IDENTITY}))"
    ),
    "users_delete": f"FOR DELETE USING ({ACTING_AS_ADMIN})",
}

# SECURITY INVOKER: it runs as the runtime role, under the policies above. The new row's id
# comes from the application (UUIDv7), so servers without uuidv7() work too. The email is kept
# as the provider last said; a name only fills an empty one (the user may have chosen theirs).
ACT_AS_CALLER = """
CREATE FUNCTION act_as_caller(
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
    PERFORM set_config('app.current_user_id', acting.id::text, true);
    IF acting.is_active AND (
        (caller_email IS NOT NULL AND caller_email IS DISTINCT FROM acting.email)
        OR (caller_name IS NOT NULL AND acting.full_name IS NULL)
    ) THEN
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
    op.add_column("users", sa.Column("issuer", sa.String(length=2048), nullable=True))
    op.add_column("users", sa.Column("subject", sa.String(length=255), nullable=True))
    op.create_unique_constraint(op.f("uq_users_issuer_subject"), "users", ["issuer", "subject"])
    op.create_check_constraint(
        op.f("ck_users_identity_complete"), "users", "(issuer IS NULL) = (subject IS NULL)"
    )
    op.drop_index("uq_users_email_lower", table_name="users")
    op.alter_column("users", "email", existing_type=sa.String(length=320), nullable=True)
    op.alter_column("users", "full_name", existing_type=sa.String(length=200), nullable=True)

    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users FORCE ROW LEVEL SECURITY")
    for name, definition in USER_POLICIES.items():
        op.execute(f"CREATE POLICY {name} ON users {definition}")
    op.execute(ACT_AS_CALLER)
    # EXECUTE goes to the runtime role with the other grants (app.db.roles), not to PUBLIC.
    op.execute("REVOKE EXECUTE ON FUNCTION act_as_caller FROM PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION act_as_caller")
    for name in reversed(USER_POLICIES):
        op.execute(f"DROP POLICY {name} ON users")
    op.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE users DISABLE ROW LEVEL SECURITY")
    # Rows provisioned without a name or email cannot go back to the old NOT NULL columns.
    op.execute("UPDATE users SET full_name = coalesce(full_name, subject, '')")
    op.execute("UPDATE users SET email = coalesce(email, id::text || '@invalid')")
    op.alter_column("users", "full_name", existing_type=sa.String(length=200), nullable=False)
    op.alter_column("users", "email", existing_type=sa.String(length=320), nullable=False)
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)
    op.drop_constraint(op.f("ck_users_identity_complete"), "users", type_="check")
    op.drop_constraint(op.f("uq_users_issuer_subject"), "users", type_="unique")
    op.drop_column("users", "subject")
    op.drop_column("users", "issuer")
