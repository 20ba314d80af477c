"""Errors a user caused: the CLI prints them as one line and exits 2, having written nothing."""


class InputError(ValueError):
    """Bad input: unknown id, invalid value, duplicate name..."""
