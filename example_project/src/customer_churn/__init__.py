"""Predicts which customers are about to cancel their subscription."""

__version__ = "0.1.0"
