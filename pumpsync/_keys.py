"""Where the API key comes from: one order for the library, ``stream``, ``top`` and ``daemon``.

Flags (or keyword arguments) > environment > config file:

1. ``--api-key`` / ``api_key=``
2. ``--api-key-file`` / ``api_key_file=``
3. ``$PUMPSYNC_API_KEY``
4. ``$PUMPSYNC_API_KEY_FILE``
5. the systemd credential ``$CREDENTIALS_DIRECTORY/api_key``
6. the config file's ``api_key_file``
7. ``fallback`` (the daemon's ``--demo`` key)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pumpsync._secrets import ApiKey
from pumpsync.errors import ConfigurationError

API_KEY_ENV = "PUMPSYNC_API_KEY"
API_KEY_FILE_ENV = "PUMPSYNC_API_KEY_FILE"
CREDENTIAL_NAME = "api_key"  # systemd: LoadCredential=api_key:/etc/pumpsync/api_key


def check_key(value: str | ApiKey) -> ApiKey:
    """``value`` as a key, or ``ConfigurationError("api_key")`` if it cannot be one."""
    value = (value.reveal() if isinstance(value, ApiKey) else value).strip()
    if not value:
        raise ConfigurationError("api_key", "the API key is empty")
    if any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise ConfigurationError("api_key", "the API key contains whitespace or control characters")
    return ApiKey(value)


def read_key_file(path: str | os.PathLike[str], option: str = "api_key_file") -> ApiKey:
    """The key from the first line of a file (checked like any other key)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigurationError(option, f"cannot read {path}: {reason}") from None
    lines = text.strip().splitlines()
    if not lines:  # the file is at fault, not --api-key
        raise ConfigurationError(option, f"{path} is empty: put the key on its first line")
    try:
        return check_key(lines[0])
    except ConfigurationError as exc:
        raise ConfigurationError(option, f"{path}: {str(exc).split(': ', 1)[-1]}") from None


def choose_api_key(
    api_key: str | ApiKey | None = None,
    api_key_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_key_file: str | os.PathLike[str] | None = None,
    fallback: str | None = None,
    required: bool = True,
) -> ApiKey | None:
    """The key by the order in this module's docstring. None if there is none and it is not
    ``required`` (a free source); ``ConfigurationError("api_key")`` if it is."""
    env = os.environ if environ is None else environ
    if api_key is not None:
        return check_key(api_key)
    if api_key_file is not None:
        return read_key_file(api_key_file)
    if env.get(API_KEY_ENV):
        return check_key(env[API_KEY_ENV])
    if env.get(API_KEY_FILE_ENV):
        return read_key_file(env[API_KEY_FILE_ENV], API_KEY_FILE_ENV)
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL_NAME).is_file():
        return read_key_file(Path(credentials) / CREDENTIAL_NAME)
    if config_key_file is not None:
        return read_key_file(config_key_file)
    if fallback is not None:
        return ApiKey(fallback)
    if not required:
        return None
    raise ConfigurationError(
        "api_key",
        f"no API key: give --api-key or --api-key-file (in Python: api_key= or api_key_file=), set "
        f"{API_KEY_ENV}, or use a systemd credential named {CREDENTIAL_NAME} or api_key_file in the daemon's config",
    )
