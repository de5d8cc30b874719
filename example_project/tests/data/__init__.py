"""Tests of reading and validating tables."""
