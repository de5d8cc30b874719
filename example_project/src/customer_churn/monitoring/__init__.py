"""Monitoring: drift of the logged traffic against the training reference, and test traffic."""
