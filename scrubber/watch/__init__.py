"""The drop-folder watcher (`scrubber watch`): local folders or an SFTP server."""

from .journal import Journal
from .log import EventLog
from .storage import LocalStorage, Storage
from .watcher import Layout, Watcher, WatchOptions

__all__ = ["EventLog", "Journal", "Layout", "LocalStorage", "Storage", "WatchOptions", "Watcher"]
