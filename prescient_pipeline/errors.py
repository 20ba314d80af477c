"""Errors a user caused: the CLI prints them as one line and exits 2, having written nothing."""


class InputError(ValueError):
    """Bad input: unknown id, invalid value, duplicate name..."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip() if lines else type(exc).__name__
