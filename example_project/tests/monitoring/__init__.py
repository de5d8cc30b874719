"""Tests of the drift job and the traffic simulator."""
