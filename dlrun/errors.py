"""Errors the user can fix: the CLI shows them as one line and exits with status 2."""


class DlrunError(Exception):
    """A problem with the user's input (config, data, run directory), stated in one line."""

    exit_code = 2


class ConfigError(DlrunError):
    """The experiment spec is invalid: names the file, line and dotted key.

    Found only once the data is loaded (an output that does not fit the labels, say), the error
    carries the dotted `key`, so that the caller who read the file can add where it is."""

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class DataError(DlrunError):
    """The data cannot be used as given."""


class RunDirError(DlrunError):
    """A path is not a readable run directory."""
