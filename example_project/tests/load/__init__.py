"""Load and kill tests of the service (marker `load`), and the load generator they use."""
