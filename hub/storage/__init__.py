"""Storage back-ends behind one narrow interface; they register as ``fabcity.storage``."""

from hub.storage.base import Aggregate, ReadingQuery, Storage, open_storage

__all__ = ["Aggregate", "ReadingQuery", "Storage", "open_storage"]
