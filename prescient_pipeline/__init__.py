"""prescient_pipeline: paper trading for Polymarket prediction markets on Dagster and PostgreSQL."""

__version__ = "0.1.0"
