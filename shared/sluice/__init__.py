"""Sluice: a self-hosted, Fivetran-compatible Connections service on AWS serverless."""
