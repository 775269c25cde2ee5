"""Saved remote endpoints (``endpoints.json`` in the data dir) and their API keys, kept apart from everything else.

A key lives in the OS keyring when a usable one exists (GNOME Keyring / KWallet via Secret Service, macOS
Keychain, Windows Credential Locker); on a headless Linux box keyring's backend is a "fail" one, and the key goes
to ``secrets/<name>.key`` in the data dir, created 0600 inside a 0700 folder. ``endpoints.json`` records only
*where* the key is, never the key, and nothing else in Playground (session DB, exports, logs) ever sees it.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from playground import jsonfile, paths
from playground.errors import KnownError

ENDPOINTS_FILE = "endpoints.json"
SECRETS_DIR = "secrets"
ENV_NO_KEYRING = "PLAYGROUND_NO_KEYRING"  # set (tests, CI) to keep keys out of the user's real keyring
DEFAULT_TIMEOUT_S = 120.0  # read timeout: the longest wait for the next byte (a big prompt's prefill)
TIMEOUT_RANGE_S = (1.0, 3600.0)  # below a second every read times out; NaN and inf never do
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
KEEP = object()  # ``EndpointStore.save(..., api_key=KEEP)``: leave the stored key as it is


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server: where it is, its default model, how long to wait for it."""

    name: str
    base_url: str  # normalised: no trailing slash, "/v1" added when the URL had no path
    model: str = ""  # default model ("" = pick from the server's list)
    timeout_s: float = DEFAULT_TIMEOUT_S
    key_store: str = ""  # where its API key is: "keyring", "file" or "" (none); never the key itself

    @property
    def has_key(self) -> bool:
        return bool(self.key_store)

    def as_dict(self) -> dict[str, Any]:
        """The saved / ``endpoints list --json`` shape (no key, only whether one is stored and where)."""
        return {"name": self.name, "base_url": self.base_url, "model": self.model, "timeout_s": self.timeout_s,
                "key_store": self.key_store}


def normalise_url(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a path given is kept (``https://x/api/v1``).

    Raises KnownError for anything but an http(s) URL with a host, or one carrying credentials.
    """
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KnownError(f"{url!r} is not an http(s) URL; use e.g. http://127.0.0.1:8000/v1")
    if parts.username or parts.password or secret_in_query(url):
        raise KnownError("Put the API key in the key field, not in the URL")
    path = parts.path.rstrip("/") or "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


_SECRET_PARAM = re.compile(r"key|token|secret|passw|auth|sig|credential", re.IGNORECASE)


def secret_in_query(url: str) -> bool:
    """True when a query parameter of ``url`` looks like a credential (``?api_key=``, ``?access_token=`` …)."""
    return any(_SECRET_PARAM.search(name) for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True))


def without_secret_query(url: str) -> str:
    """``url`` with its query string dropped when it carries a credential (an endpoints.json from before it was
    refused): the key is then never printed, stored again or sent."""
    if not secret_in_query(url):
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def check_timeout(seconds: float) -> float:
    """The read timeout as a float; raises KnownError unless it is a number of seconds in TIMEOUT_RANGE_S."""
    lo, hi = TIMEOUT_RANGE_S
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        raise KnownError(f"The timeout {seconds!r} is not a number of seconds") from None
    if not lo <= value <= hi:  # False for NaN too
        raise KnownError(f"The timeout must be between {lo:g} and {hi:g} seconds, not {value:g}")
    return value


def check_key(key: str) -> str:
    """``key`` unchanged; raises KnownError unless it can travel in an HTTP header (printable ASCII, no spaces),
    as every API key does. The message never repeats the key."""
    if not (key.isascii() and key.isprintable() and " " not in key):
        raise KnownError("An API key is printable ASCII without spaces; this one holds other characters (a paste "
                         "from a document, or a line break?). Enter it again")
    return key


def check_name(name: str) -> str:
    """The name, stripped; raises KnownError unless it is 1-64 letters, digits, ``.``, ``_`` or ``-``."""
    name = name.strip()
    if not _NAME.match(name):
        raise KnownError(f"Endpoint name {name!r}: use 1-64 letters, digits, '.', '_' or '-' (it becomes part of "
                         "model ids: remote:NAME/MODEL)")
    return name


# -- keys ------------------------------------------------------------------------------------------------------------
def usable_keyring() -> Any | None:
    """The OS keyring backend, or None when there is none worth using (keyring's fail/null backends, an empty
    chain, the package missing, or $PLAYGROUND_NO_KEYRING set)."""
    if os.environ.get(ENV_NO_KEYRING):
        return None
    try:
        import keyring
        from keyring.backends import chainer, fail, null
    except Exception:  # noqa: BLE001 - a broken keyring install means "no keyring", not a crash
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # noqa: BLE001
        return None
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
        return None
    return backend


def _service() -> str:
    # Keys belong to a data dir, like the endpoints that use them (tests and --data-dir get their own).
    return f"playground:{paths.data_dir()}"


def _secrets_dir() -> Path:
    folder = paths.data_dir() / SECRETS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    return folder


def _key_file(name: str) -> Path:
    return _secrets_dir() / f"{name}.key"


class EndpointStore:
    """The saved endpoints and their keys. Cheap to create; reads the file on every call (the UI and the CLI may
    both change it)."""

    def __init__(self) -> None:
        self._file = paths.data_dir() / ENDPOINTS_FILE

    def list(self) -> list[Endpoint]:
        return [e for e in (self._from_dict(d) for d in self._load()) if e is not None]

    def get(self, name: str) -> Endpoint:
        for endpoint in self.list():
            if endpoint.name == name:
                return endpoint
        raise KnownError(f"No endpoint named {name!r}; add it with `playground endpoints add {name or 'NAME'} URL` "
                         "or in Endpoints…")

    def save(self, endpoint: Endpoint, api_key: Any = KEEP) -> Endpoint:
        """Add or replace ``endpoint`` (by name). ``api_key``: a new key, None or "" to delete it, KEEP to leave
        it. Returns the endpoint as saved (its ``key_store`` says where the key went)."""
        endpoint = replace(endpoint, name=check_name(endpoint.name), base_url=normalise_url(endpoint.base_url),
                           model=endpoint.model.strip(), timeout_s=check_timeout(endpoint.timeout_s))
        if api_key is not KEEP and api_key:
            check_key(api_key)
        entries = [d for d in self._load() if d.get("name") != endpoint.name]
        previous = next((e for e in self.list() if e.name == endpoint.name), None)
        if api_key is KEEP:
            endpoint = replace(endpoint, key_store=previous.key_store if previous else "")
        else:
            self._delete_key(endpoint.name)
            endpoint = replace(endpoint, key_store=self._store_key(endpoint.name, api_key) if api_key else "")
        self._write([*entries, endpoint.as_dict()])
        return endpoint

    def remove(self, name: str) -> None:
        """Forget the endpoint and delete its key."""
        entries = self._load()
        kept = [d for d in entries if d.get("name") != name]
        if len(kept) == len(entries):
            raise KnownError(f"No endpoint named {name!r}")
        self._delete_key(name)
        self._write(kept)

    def api_key(self, name: str) -> str | None:
        """The endpoint's key from wherever it is stored, or None."""
        endpoint = self.get(name)
        if endpoint.key_store == "keyring":
            backend = usable_keyring()
            if backend is None:
                raise KnownError(f"The API key of {name!r} is in the OS keyring, which is not available now; "
                                 "enter the key again in Endpoints…")
            try:
                return backend.get_password(_service(), name)
            except Exception as exc:  # noqa: BLE001 - keyring backends raise their own error types
                raise KnownError(f"Could not read the API key of {name!r} from the OS keyring "
                                 f"({type(exc).__name__})") from exc
        if endpoint.key_store == "file":
            try:
                key = _key_file(name).read_text(encoding="utf-8").strip() or None
            except (OSError, UnicodeDecodeError):
                return None
            return None if key is None else check_key(key)
        return None

    # -- internals -----------------------------------------------------------------------------------------------
    def _store_key(self, name: str, key: str) -> str:
        backend = usable_keyring()
        if backend is not None:
            try:
                backend.set_password(_service(), name, key)
                return "keyring"
            except Exception:  # noqa: BLE001, S110 - a locked or refusing keyring: fall back to the private file
                pass
        jsonfile.write_atomic(_key_file(name), key, private=True)
        return "file"

    def _delete_key(self, name: str) -> None:
        backend = usable_keyring()
        if backend is not None:
            with contextlib.suppress(Exception):
                backend.delete_password(_service(), name)
        with contextlib.suppress(OSError):
            (paths.data_dir() / SECRETS_DIR / f"{name}.key").unlink()

    def _load(self) -> list[dict[str, Any]]:
        entries = jsonfile.load_object(self._file).get("endpoints")
        return [d for d in entries if isinstance(d, dict) and isinstance(d.get("name"), str)] \
            if isinstance(entries, list) else []

    def _write(self, entries: list[dict[str, Any]]) -> None:
        jsonfile.save(self._file, {"endpoints": entries})

    @staticmethod
    def _from_dict(d: dict[str, Any]) -> Endpoint | None:
        """An entry of endpoints.json, or None when a field has the wrong type (a hand-edited file)."""
        known = {k: d[k] for k in asdict(Endpoint("", "")) if k in d}
        if not all(isinstance(known.get(k, ""), str) for k in ("name", "base_url", "model", "key_store")):
            return None
        try:
            timeout = check_timeout(known.get("timeout_s", DEFAULT_TIMEOUT_S))
            # a key in the query (a file from before it was refused) is dropped, never printed or sent again
            url = normalise_url(without_secret_query(known.get("base_url", "")))
            return Endpoint(**{**known, "base_url": url, "timeout_s": timeout})
        except KnownError:
            return None
