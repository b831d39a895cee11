"""Provisioning and decommissioning workers on a cloud provider (Hetzner Cloud), with rollback.

``hetzner`` is the API client, ``cloudinit`` the new server's first-boot script and firewall
rules, ``provision``/``decommission`` the step machines (no HTTP), ``service`` runs them in the
daemon, ``admin_routes`` and ``cli`` are the two ways in.
"""
