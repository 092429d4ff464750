"""Persistence: Peewee models, the async Store facade, optional Redis cache."""
from .errors import DuplicateError, FencedError, StoreClosedError, StoreError
from .store import Store

__all__ = ["Store", "StoreError", "DuplicateError", "FencedError", "StoreClosedError"]
