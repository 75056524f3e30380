"""DynamoDB: the only package that builds DynamoDB requests."""
