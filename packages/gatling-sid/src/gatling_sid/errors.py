"""The package's user-error types (all :class:`datacore.DatacoreError`, so the CLI prints one line)."""

from __future__ import annotations

from datacore import DatacoreError


class GatlingError(DatacoreError):
    """Base class of gatling-sid's user errors."""


class RegistryError(GatlingError):
    """A domain file is broken: bad YAML, a schema that is not a JSON Schema, an unknown tool in a policy."""


class TraceFormatError(GatlingError):
    """A trace (or dataset record) does not have the shape of a trace; the message names where."""


class GraphError(GatlingError):
    """A tool-call graph is not a DAG or names a dependency that does not exist."""
