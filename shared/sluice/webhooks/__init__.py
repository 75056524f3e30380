"""Fivetran's Webhooks API: webhooks an account or a group registers, and the delivery of what happens
on the Sluice bus to them, in Fivetran's payload shapes, signed with `X-Fivetran-Signature-256`."""
