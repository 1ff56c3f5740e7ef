"""Exceptions for problems a user can fix: bad files, bad arguments, missing weights.

Library code raises these with a one-line message that names the thing and the fix; the CLI
prints the message alone (no traceback) and exits with status 2. Anything else is a bug and
keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class ConfigError(UserError, ValueError):
    """An invalid configuration value (e.g. a resolution that is not a power of two)."""


class CheckpointError(UserError):
    """A checkpoint file that is missing, corrupt, unsafe, or of the wrong format."""


class DatasetError(UserError):
    """An image folder, archive or attribute file that cannot be used as given."""


class NonFiniteError(UserError):
    """A generator, loss or metric produced NaN or Inf."""
