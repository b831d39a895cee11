"""Role-naming statements of a dump rewritten for the clone's roles (pure, no database)."""

from __future__ import annotations

import pytest

from appliance.backups.rolemap import RoleMappingFailed, map_role_statements, role_mapping, server_role_filter
from appliance.projects.model import ProjectNames

OLD, NEW = ProjectNames("aaaaaaaaaaaa"), ProjectNames("bbbbbbbbbbbb")
KEEP = server_role_filter(["postgres", "pg_database_owner", "proj_cccccccccccc_anon"])
SCRIPT = """
\\restrict abc
SET statement_timeout = 0;
CREATE TABLE public.notes (id integer);
ALTER TABLE public.notes OWNER TO proj_aaaaaaaaaaaa_owner;
ALTER FUNCTION public.f() OWNER TO postgres;
CREATE POLICY p ON public.notes TO proj_aaaaaaaaaaaa_anon, proj_cccccccccccc_anon USING (true);
CREATE POLICY q ON public.notes TO proj_cccccccccccc_anon USING (true);
GRANT SELECT ON TABLE public.notes TO proj_aaaaaaaaaaaa_app, gone_role;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE proj_aaaaaaaaaaaa_owner IN SCHEMA public
    GRANT SELECT ON TABLES TO proj_aaaaaaaaaaaa_anon;
\\unrestrict abc
"""


def test_statements_are_mapped_kept_or_left_out() -> None:
    mapped = map_role_statements(SCRIPT, role_mapping(OLD, NEW), KEEP)
    assert mapped.statements == [
        "ALTER TABLE public.notes OWNER TO proj_bbbbbbbbbbbb_owner",
        "ALTER FUNCTION public.f () OWNER TO postgres",
        "CREATE POLICY p ON public.notes AS PERMISSIVE FOR all TO proj_bbbbbbbbbbbb_anon USING (TRUE)",
        "GRANT SELECT ON TABLE public.notes TO proj_bbbbbbbbbbbb_app",
        "REVOKE ALL PRIVILEGES ON SCHEMA public FROM PUBLIC",
        "ALTER DEFAULT PRIVILEGES FOR ROLE proj_bbbbbbbbbbbb_owner IN SCHEMA public"
        " GRANT SELECT ON TABLES TO proj_bbbbbbbbbbbb_anon",
    ]
    # Another project's role is never carried into the clone, even though it exists here.
    assert [s.split(" ON ")[0] for s in mapped.skipped] == ["CREATE POLICY q"]


def test_a_restrictive_policy_left_without_roles_fails_the_clone() -> None:
    script = "CREATE POLICY r ON t AS RESTRICTIVE TO gone_role USING (false);"
    with pytest.raises(RoleMappingFailed):
        map_role_statements(script, role_mapping(OLD, NEW), KEEP)
