"""Which source a log line is about.

Every thread a client starts carries its source's label (the provider, or a source's own name
with several sources); one filter on the library's loggers puts the label at the head of each
line logged from such a thread (``anaxer-eu: connection 0: open``) and in ``record.source``.
"""

from __future__ import annotations

import logging
import threading

from pumpsync._text import log_safe

ATTRIBUTE = "pumpsync_source"
# The loggers whose lines come from a client's threads.
LOGGERS = (
    "pumpsync",
    "pumpsync.connection",
    "pumpsync.supervisor",
    "pumpsync.backfill",
    "pumpsync.redis",
    "pumpsync.replay",
    "pumpsync.history.solana",
)
_install_lock = threading.Lock()


class SourceTag(logging.Filter):
    """Prefix a record logged from a labelled thread with its source (once; never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        label = getattr(threading.current_thread(), ATTRIBUTE, None)
        if label and getattr(record, "source", None) is None:
            record.source = label
            if isinstance(record.msg, str):
                record.msg = label.replace("%", "%%") + ": " + record.msg
        return True


def label_threads(label: str, *threads: threading.Thread | None) -> None:
    """Mark ``threads`` as working for the source ``label`` (and make sure the filter is on)."""
    label = log_safe(label, 64)  # a user-given Source name: one line, no terminal controls
    for thread in threads:
        if thread is not None:
            setattr(thread, ATTRIBUTE, label)
    with _install_lock:
        for name in LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, SourceTag) for f in logger.filters):
                logger.addFilter(SourceTag())


__all__ = ["SourceTag", "label_threads"]
