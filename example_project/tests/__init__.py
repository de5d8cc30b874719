"""The project's tests: they mirror the package, stage by stage."""
