-- End users of the project's apps (/v1/auth). Owned by the platform; only the gateway's app
-- role reaches it. anon and authenticated (the roles RLS policies run as) must never see it,
-- and neither does the owner: password hashes stay out of the SQL editor.

CREATE SCHEMA atlas_auth;
REVOKE ALL ON SCHEMA atlas_auth FROM PUBLIC;
GRANT USAGE ON SCHEMA atlas_auth TO {{app}};

CREATE TABLE atlas_auth.users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    password_hash   text NOT NULL,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz
);
CREATE UNIQUE INDEX users_email_key ON atlas_auth.users (lower(email));

-- One row per refresh token. A family is one sign-in (a session): every refresh adds a row to
-- it and marks the previous one used; presenting a used token again revokes the family.
CREATE TABLE atlas_auth.refresh_tokens (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES atlas_auth.users (id) ON DELETE CASCADE,
    family_id   uuid NOT NULL,
    token_hash  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    replaced_by uuid
);
CREATE INDEX refresh_tokens_family ON atlas_auth.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON atlas_auth.refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires ON atlas_auth.refresh_tokens (expires_at);

REVOKE ALL ON ALL TABLES IN SCHEMA atlas_auth FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON atlas_auth.users, atlas_auth.refresh_tokens TO {{app}};
