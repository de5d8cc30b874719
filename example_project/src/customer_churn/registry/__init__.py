"""After fitting: MLflow tracking and registry, the serving export, its profile, promotion."""
