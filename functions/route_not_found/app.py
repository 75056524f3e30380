"""Catch-all for paths and methods no other function serves: 404 or 405 in the Fivetran envelope."""

from __future__ import annotations

from sluice.api.resolver import make_resolver
from sluice.observability import api_handler

app = make_resolver()  # no routes: every request reaches the resolver's 404/405 handler


lambda_handler = api_handler(app)
