"""Exception hierarchy of compot.

Every error raised on purpose by compot derives from :class:`CompotError` and
from the builtin that best describes it, so callers may catch either. Messages
name the file, line or value at fault, what was expected and what was found.
"""


class CompotError(Exception):
    """Base class of every error compot raises on purpose."""


class ExpressionError(CompotError, ValueError):
    """Raised when a model expression (``E[G8L4] + N[E[G8L4]]``) cannot be parsed
    or describes an impossible model (e.g. ``ZBL`` inside a product)."""


class ParameterFileError(CompotError, ValueError):
    """Raised when a parameter file (format v1, ``docs/parameter-file.md``) is
    malformed: wrong version, unknown or missing parameter, non-finite value."""


class DatasetError(CompotError, ValueError):
    """Raised when a dataset file or record is unusable: missing energy, forces
    of the wrong shape, NaN/inf, unsupported species, atoms too close."""


class ConfigError(CompotError, ValueError):
    """Raised when a YAML configuration has unknown keys or invalid values."""


class SpeciesError(CompotError, ValueError):
    """Raised when a configuration contains a species the model does not have."""


class FitError(CompotError, RuntimeError):
    """Raised when a fit cannot proceed (empty data, singular problem, bad checkpoint)."""


def reject_unknown_keys(where: str, given, allowed) -> None:
    """Raise :class:`ConfigError` naming the unknown keys of a configuration
    mapping and the allowed ones (``where`` locates the mapping)."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; "
                          f"allowed: {', '.join(map(str, allowed))}")
