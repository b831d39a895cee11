-- Bootstrap of a project database, run by the platform (superuser) right after CREATE DATABASE.
-- {{owner}}, {{app}}, {{anon}}, {{authenticated}} are the project's roles, quoted by the platform.

-- Only the owner creates objects in public; the API roles may use what is granted to them.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {{app}}, {{anon}}, {{authenticated}};

-- Tables, sequences and functions the owner creates are usable by the service-level app role.
-- anon and authenticated get only what the owner grants them (with RLS policies on top).
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {{app}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {{app}};
ALTER DEFAULT PRIVILEGES FOR ROLE {{owner}} IN SCHEMA public
    GRANT EXECUTE ON FUNCTIONS TO {{app}}, {{anon}}, {{authenticated}};

-- The platform's own bookkeeping. The owner may read it and record its migrations there.
CREATE SCHEMA atlas;
REVOKE ALL ON SCHEMA atlas FROM PUBLIC;
GRANT USAGE ON SCHEMA atlas TO {{owner}};
CREATE TABLE atlas.platform_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE atlas.atlas_migrations (
    name       text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT ON atlas.platform_migrations TO {{owner}};
GRANT SELECT, INSERT ON atlas.atlas_migrations TO {{owner}};

-- Supabase-style helpers so row-level security policies can be written as in Supabase:
-- auth.uid(), auth.role(), auth.jwt() read the end user's claims set per request by the gateway.
CREATE SCHEMA auth;
REVOKE ALL ON SCHEMA auth FROM PUBLIC;
GRANT USAGE ON SCHEMA auth TO {{owner}}, {{app}}, {{anon}}, {{authenticated}};

CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;

CREATE FUNCTION auth.uid() RETURNS uuid
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(auth.jwt() ->> 'sub', '')::uuid $$;

CREATE FUNCTION auth.role() RETURNS text
    LANGUAGE sql STABLE
    AS $$ SELECT coalesce(auth.jwt() ->> 'role', current_user::text) $$;

REVOKE ALL ON FUNCTION auth.jwt(), auth.uid(), auth.role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.jwt(), auth.uid(), auth.role() TO {{owner}}, {{app}}, {{anon}}, {{authenticated}};
