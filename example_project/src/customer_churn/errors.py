"""Errors a user can act on; the command line prints them without a traceback."""


class ProjectError(Exception):
    """Base class: the message says what is wrong and where."""


class DataError(ProjectError):
    """A data file is missing, unreadable or breaks the feature contract."""


class ModelLoadError(ProjectError):
    """A model could not be found or loaded from the given path or URI."""


class TrackingError(ProjectError):
    """The tracking server or registry cannot be reached or refuses a request."""


class PromotionRefused(ProjectError):
    """The promotion gate kept the champion; the message gives the reasons."""
