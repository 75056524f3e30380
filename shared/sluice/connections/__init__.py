"""Connections: the model, the create/get/list/update/delete operations, setup tests."""
