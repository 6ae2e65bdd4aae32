"""One exception hierarchy for APE: messages name the file or field and say what to do.

Every error a user can cause is an `ApeError`; the CLI maps them to exit code 2 and prints
`str(error)` as one line. Validation findings carry a stable `code` so that the CLI, the app
and the tests never depend on wording. A message often quotes a package's text, so
`ApeError` shows every control, format or separator character in it as a visible escape
(`apesim.text.printable`): an error is always one line and never drives a terminal.
"""

from __future__ import annotations

from apesim.text import printable


class ApeError(Exception):
    """Base of every error caused by input, a file or the workspace (not a bug in APE).
    Its message is always one line of printable text, whatever it quotes."""

    code: str = "APE000"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(printable(message))
        if code is not None:
            self.code = code

    def __str__(self) -> str:  # args may be replaced after construction: escape again
        return printable(super().__str__())

    def __reduce__(self) -> tuple[object, ...]:
        """Pickled with its code and attributes (a package is read in a child process)."""
        return (_restore, (type(self), self.args, dict(self.__dict__)))


def _restore(cls: type[ApeError], args: tuple[object, ...], state: dict[str, object]) -> ApeError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ProtocolError(ApeError, ValueError):
    """A protocol file is missing, unreadable or does not satisfy the protocol schema.

    Its message is one line (the first problem, and how many more); `problems` lists every
    problem, one line each, naming the file and field (`ape protocols validate` prints them
    all)."""

    code = "PROTOCOL"

    def __init__(
        self, message: str, *, code: str | None = None, problems: list[str] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.problems = [printable(p) for p in problems] if problems else [str(self)]


class ParameterError(ApeError, ValueError):
    """A simulation parameter (patients, years, seed, ...) is out of range."""

    code = "PARAMETER"


class WorkspaceError(ApeError):
    """The workspace cannot be opened or changed as asked."""

    code = "WORKSPACE"


class SimulationNotFoundError(WorkspaceError, KeyError):
    """No simulation with that id or name exists in the workspace."""

    code = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError would quote the message
        return printable(self.args[0])


class DuplicateSimulationError(WorkspaceError):
    """The simulation, or the package it was imported from, is registered already (another
    install of it got there first)."""

    code = "duplicate"


class ReadOnlySimulationError(WorkspaceError):
    """The simulation was imported and may not be re-run or overwritten."""

    code = "READ_ONLY"


class StorageError(ApeError):
    """The disk refused a write: it is full (`storage.no_space`, `storage.too_large`),
    read-only (`storage.read_only`) or not ours to write (`storage.permission`). The user's to
    fix, so exit 2; raised by `apesim.storage` where APE writes."""

    code = "storage"


class PackageError(ApeError):
    """A simulation package cannot be read, trusted or imported."""

    code = "PKG"


class PackageFormatError(PackageError):
    """The file is not a well-formed package (not a ZIP, truncated, wrong layout, bad schema)."""

    code = "PKG_FORMAT"


class PackageSecurityError(PackageError):
    """The package is unsafe to open: traversal names, overlaps, bombs, hidden payloads."""

    code = "PKG_SECURITY"


class PackageLimitError(PackageSecurityError):
    """The package exceeds a size, count, ratio or depth limit."""

    code = "PKG_LIMIT"


class PackageIntegrityError(PackageError):
    """Content does not match its manifest or the tables disagree with each other."""

    code = "PKG_INTEGRITY"


class PackageVersionError(PackageError):
    """The package was written by a newer, incompatible version of the format."""

    code = "PKG_VERSION"


class DuplicateImportError(PackageError):
    """The package's simulation is already in the workspace."""

    code = "PKG_DUPLICATE"

    def __init__(self, message: str, *, existing_sim_id: str) -> None:
        super().__init__(message)
        self.existing_sim_id = existing_sim_id


class ReproduceError(ApeError):
    """A simulation cannot be re-simulated by this APE (e.g. it was made by the earlier APE,
    or by a model this version does not have)."""

    code = "reproduce.unsupported"


class KeyringError(ApeError):
    """A key cannot be made, found, read or trusted as asked (`keys.*`)."""

    code = "keys"


class RemoteError(ApeError):
    """An object store refused or failed a request (`remote.error`), holds no such object
    (`remote.missing`), denies access (`remote.denied`), already holds a different object
    under the name (`remote.exists`), or is not installed (`remote.unavailable`). The message
    names the URL."""

    code = "remote.error"
