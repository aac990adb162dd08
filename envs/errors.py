"""The one exception type for mistakes a user can fix.

Everything the harness reports as "bad input" derives from :class:`UserInputError`, so a
command-line entry point can print its message as one line instead of a traceback, while
genuine bugs still surface with their stack.
"""


class UserInputError(ValueError):
    """A value supplied by the user is not allowed; the message names it and what is."""


def choices_error(what: str, value: object, allowed: "list[object] | range | str") -> UserInputError:
    """Build the standard one-line error: ``unknown suite 'x'; allowed: a, b, c``."""
    if isinstance(allowed, range):
        allowed_text = f"{allowed.start}..{allowed.stop - 1}"
    elif isinstance(allowed, str):
        allowed_text = allowed
    else:
        allowed_text = ", ".join(str(a) for a in allowed)
    return UserInputError(f"{what} {value!r} is not valid; allowed: {allowed_text}")
