"""Errors of workload inputs."""


class TraceError(ValueError):
    """A malformed trace or distribution file: names the file, the row (1-based line) and the column."""


class MissingDataFile(TraceError):
    """A trace or distribution file that does not exist."""
