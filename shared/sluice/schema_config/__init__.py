"""A connection's schema config (Fivetran's Connection Schema resource): which tables and columns sync,
which columns land hashed, how new ones are handled, and each table's sync mode."""
