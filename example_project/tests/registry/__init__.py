"""Tests of the serving export, the registry and the promotion gate."""
