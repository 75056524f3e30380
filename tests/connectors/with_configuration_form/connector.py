"""A connector with a configuration form: two fields (one required, one a dropdown) and a test."""

from fivetran_connector_sdk import ConfigurationForm, Connector, Test, form_field
from fivetran_connector_sdk import Operations as op


def configuration_form():
    form = ConfigurationForm()
    form.add_field(
        form_field.TextField("api_token", "API token", form_field.TextField.password, required=True)
    )
    form.add_field(
        form_field.DropdownField(
            name="region",
            label="Region",
            fields=[form_field.DropdownFieldParam(value="eu"), form_field.DropdownFieldParam(value="us")],
        )
    )
    form.add_test(label="Checking the token", func=token_test)
    return form


def token_test(configuration: dict):
    if configuration.get("api_token", "").startswith("tok-"):
        return Test.success()
    return Test.failure("the token must start with tok-")


def update(configuration: dict, state: dict):
    op.upsert("regions", {"region": configuration.get("region", "eu")})


connector = Connector(update=update, configuration_form=configuration_form)
