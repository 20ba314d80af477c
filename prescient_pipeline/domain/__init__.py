"""Pure domain logic: no SQL, no HTTP, no Dagster."""
