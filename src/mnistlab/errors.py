"""The one exception type the CLI turns into a one-line message and exit code 2."""


class UserError(ValueError):
    """Bad input from the user (a file, a flag, a config): the message is shown as is."""
