"""Exceptions raised by the store."""
import logging

import peewee

logger = logging.getLogger(__name__)


class StoreError(Exception):
    """Base class of the store's own errors."""


class DuplicateError(StoreError):
    """A unique column (worker url, job ids) already holds this value."""


class StoreClosedError(StoreError):
    """The store is not open (never opened, closing or closed)."""


class FencedError(StoreError):
    """A dispatcher write refused because its lease epoch no longer holds the lease."""


def is_store_failure(exc):
    """True when the database could not be reached or refused to work (an outage, not a bug)."""
    return isinstance(exc, (StoreClosedError, peewee.OperationalError, peewee.InterfaceError))
