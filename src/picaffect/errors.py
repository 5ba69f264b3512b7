"""The base of every error a user can cause: the command line prints these as one
line and exits non-zero, where any other exception is a bug and keeps its traceback."""


class PicaffectError(Exception):
    """A problem with the input or the request, with a message that says what and where."""
