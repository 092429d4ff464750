"""Exceptions raised by the store."""
import logging

logger = logging.getLogger(__name__)


class StoreError(Exception):
    """Base class of the store's own errors."""


class DuplicateError(StoreError):
    """A unique column (worker url, job ids) already holds this value."""


class StoreClosedError(StoreError):
    """The store is not open (never opened, closing or closed)."""


class FencedError(StoreError):
    """A dispatcher write refused because its lease epoch no longer holds the lease."""
