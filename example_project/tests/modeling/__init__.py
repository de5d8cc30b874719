"""Tests of metrics, explanations, segments and the model card."""
