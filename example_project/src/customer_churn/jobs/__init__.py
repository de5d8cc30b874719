"""The jobs that wire the stages together: training, re-scoring, batch prediction."""
