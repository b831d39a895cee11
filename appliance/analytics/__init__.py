"""Analytics access for BI tools: a per-project ``analytics`` schema of safe views and a read-only role.

:mod:`appliance.analytics.service` owns the lifecycle (no HTTP), :mod:`appliance.analytics.views`
checks and creates views, :mod:`appliance.analytics.routes` is the admin API.
"""
