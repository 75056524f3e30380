"""The HTTP API plumbing every API function shares: resolver, caller, routes, request models."""
