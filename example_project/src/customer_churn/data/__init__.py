"""Reading and validating tables: the first stage of the flow."""
