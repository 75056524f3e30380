"""API Gateway REQUEST authorizer: HTTP Basic with a Sluice API key."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sluice.accounts.api_keys import authenticate
from sluice.observability import logger
from sluice.storage.store import get_store


def _policy(effect: str, method_arn: str) -> dict[str, Any]:
    # Allow the whole API, so API Gateway can cache one decision per key for every route.
    arn_parts = method_arn.split("/")
    api_arn = "/".join(arn_parts[:2]) + "/*/*" if len(arn_parts) >= 2 else method_arn
    return {
        "Version": "2012-10-17",
        "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": api_arn}],
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    caller = authenticate(get_store(), headers.get("authorization"))
    if caller is None:
        logger.info("rejected credentials")
        # API Gateway turns this exact message into a 401 (the UNAUTHORIZED gateway response).
        raise Exception("Unauthorized")
    return {
        "principalId": caller.user_id,
        "policyDocument": _policy("Allow", event.get("methodArn", "")),
        "context": {"account_id": caller.account_id, "user_id": caller.user_id},
    }
