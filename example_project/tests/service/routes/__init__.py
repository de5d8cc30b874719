"""Tests of the service's routes, one module per router."""
