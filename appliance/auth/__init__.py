"""End-user auth for the apps of each project (/v1/auth): email and password, short-lived
HS256 access tokens signed with a per-project secret, rotating single-use refresh tokens.

Users live in each project's own database (schema ``atlas_auth``); the signing secrets live
sealed in the control plane. ``service.AuthService`` holds the rules and knows nothing of HTTP;
``routes`` and ``admin_routes`` are thin handlers over it.
"""
