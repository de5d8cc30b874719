"""Tests of the jobs: training, reproduction, batch prediction."""
