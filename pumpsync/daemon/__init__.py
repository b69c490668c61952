"""``pumpsync daemon``: one long-running client that hands events on to sinks.

- :mod:`pumpsync.daemon.config`: TOML file, environment and flags merged into :class:`DaemonConfig`.
- :mod:`pumpsync.daemon.sinks`: where events go (stdout, JSONL file, SQLite, webhook, a callable).
- :mod:`pumpsync.daemon.dispatch`: the one thread that moves events from the client to the sinks.
- :mod:`pumpsync.daemon.sdnotify`: the systemd notification protocol, by hand.
- :mod:`pumpsync.daemon.state`: where a restarted daemon resumes (the sinks' stored positions).
- :mod:`pumpsync.daemon.runner`: start, watch, and shut down in order.

Metrics live in :mod:`pumpsync.metrics`.
"""
