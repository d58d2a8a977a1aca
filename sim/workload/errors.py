"""Errors of workload inputs."""


class TraceError(ValueError):
    """A malformed trace or distribution file: names the file, the row (1-based line) and the column."""
