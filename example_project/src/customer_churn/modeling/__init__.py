"""Fitting and judging a model: cross-validation, metrics, explanations, segments, its card."""
