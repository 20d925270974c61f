"""Stand-in for `modal.exception`."""


class Error(Exception):
    pass


class NotFoundError(Error):
    pass
