"""The command line's exit codes, in one place: scripts branch on them (docs/cli.md lists them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `distributor` command's status means; typer/click itself uses 2 for bad usage."""

    OK = 0  # done; for `health` and `recovery status`: healthy
    FAILED = 1  # the operation was tried and failed (a refused delivery, a failing check, unhealthy)
    USAGE = 2  # bad command line: unknown option, bad option value (click's own code for usage errors)
    CONFIG = 3  # the configuration file is missing or invalid
    UNAVAILABLE = 4  # Redis (or the broker) cannot be reached
    NOT_FOUND = 5  # no such article, delivery, channel or source
    EXISTS = 6  # `init`: a file would be overwritten (use --force)
