"""Dagster layer: assets, checks, jobs, sensors, schedules and resources. Thin by design."""
