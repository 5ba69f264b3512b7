"""The errors a user can cause, one family under ``PicaffectError``.

The command line prints a ``PicaffectError`` as one line and exits with status 2;
any other exception is a bug in picaffect or a library and keeps its traceback, so
that it can be reported and fixed rather than mistaken for bad input.
"""


class PicaffectError(Exception):
    """A problem with the input or the request, with a message that says what and where."""


class UsageError(PicaffectError):
    """An option or argument that cannot work (a zero batch size, an unknown name)."""


class DeviceError(PicaffectError):
    """A compute device that was asked for but is not there (``--device cuda`` without CUDA)."""


class CheckpointError(PicaffectError):
    """A file that is not a readable picaffect checkpoint: truncated, foreign, or of an unknown version."""


class WeightsError(PicaffectError):
    """Pretrained weights that do not fit the architecture (missing, unexpected or mis-shaped tensors)."""


class ConfigError(PicaffectError):
    """A configuration file (``configs/default.yaml``) with unknown, missing or ill-typed keys."""
