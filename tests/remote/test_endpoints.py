"""Endpoints and API keys: the key lives in the OS keyring or a 0600 file, never in endpoints.json, the session
DB, exports or ``endpoints list``."""

from __future__ import annotations

import json
import stat

import pytest

from playground import paths
from playground.cli import main as cli
from playground.domain.models import is_remote, split_remote_id
from playground.errors import KnownError
from playground.models.endpoints import ENV_NO_KEYRING, KEEP, Endpoint, EndpointStore, normalise_url, usable_keyring

SECRET = "sk-live-0123456789abcdef"


class MemoryKeyring:
    """A keyring backend that works (what GNOME Keyring or the macOS Keychain would be)."""

    priority = 10

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, user: str, password: str) -> None:
        self.items[(service, user)] = password

    def get_password(self, service: str, user: str) -> str | None:
        return self.items.get((service, user))

    def delete_password(self, service: str, user: str) -> None:
        self.items.pop((service, user), None)


def test_remote_ids() -> None:
    assert split_remote_id("remote:vllm/meta-llama/Llama-3.1-8B") == ("vllm", "meta-llama/Llama-3.1-8B")
    assert split_remote_id("remote:ollama") == ("ollama", "")
    assert is_remote("remote:x/y") and not is_remote("smollm2-135m-instruct")


def test_urls_and_names_are_checked() -> None:
    assert normalise_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalise_url("https://host/api/v1/ ") == "https://host/api/v1"
    for bad in ("ftp://x", "localhost:8000", "http://user:pw@host/v1"):
        with pytest.raises(KnownError):
            normalise_url(bad)
    with pytest.raises(KnownError, match="letters, digits"):
        EndpointStore().save(Endpoint("has space", "http://h/v1"))


def test_headless_linux_has_no_usable_keyring_so_the_key_goes_to_a_0600_file(monkeypatch) -> None:
    import keyring
    from keyring.backends import fail

    monkeypatch.delenv(ENV_NO_KEYRING)
    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    assert usable_keyring() is None
    store = EndpointStore()
    saved = store.save(Endpoint("vllm", "http://10.0.0.5:8000", "llama"), api_key=SECRET)
    assert saved.key_store == "file"
    key_file = paths.data_dir() / "secrets" / "vllm.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert store.api_key("vllm") == SECRET
    assert SECRET not in (paths.data_dir() / "endpoints.json").read_text()
    store.save(Endpoint("vllm", "http://10.0.0.6:8000", "llama"))  # an edit keeps the key
    assert store.api_key("vllm") == SECRET and store.get("vllm").base_url == "http://10.0.0.6:8000/v1"
    store.remove("vllm")
    assert not key_file.exists()


def test_a_working_keyring_holds_the_key(monkeypatch) -> None:
    import keyring

    ring = MemoryKeyring()
    monkeypatch.delenv(ENV_NO_KEYRING)
    monkeypatch.setattr(keyring, "get_keyring", lambda: ring)
    store = EndpointStore()
    assert store.save(Endpoint("cloud", "https://api.example.com/v1"), api_key=SECRET).key_store == "keyring"
    assert store.api_key("cloud") == SECRET
    assert not (paths.data_dir() / "secrets" / "cloud.key").exists()
    assert list(ring.items.values()) == [SECRET]
    store.save(Endpoint("cloud", "https://api.example.com/v1"), api_key=None)  # delete the key
    assert ring.items == {} and store.api_key("cloud") is None
    store.save(Endpoint("cloud", "https://api.example.com/v1"), api_key=KEEP)
    assert store.get("cloud").key_store == ""


def test_cli_add_list_remove_never_prints_the_key(capsys, monkeypatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(SECRET + "\n"))
    assert cli.main(["endpoints", "add", "vllm", "http://127.0.0.1:9/v1", "--model", "m", "--api-key-stdin"]) == 0
    assert "private file" in capsys.readouterr().out
    assert cli.main(["endpoints", "list"]) == 0
    listing = capsys.readouterr().out
    assert "vllm" in listing and "remote:vllm/m" in listing and SECRET not in listing
    assert cli.main(["endpoints", "list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == [{"name": "vllm", "base_url": "http://127.0.0.1:9/v1", "model": "m", "timeout_s": 120.0,
                     "key_store": "file"}]
    assert cli.main(["models", "--json"]) == 0  # the default model is in the registry, without network
    models = json.loads(capsys.readouterr().out)
    assert {"id": "remote:vllm/m", "source": "remote"}.items() <= next(m for m in models
                                                                       if m["id"] == "remote:vllm/m").items()
    assert cli.main(["endpoints", "remove", "vllm"]) == 0
    assert cli.main(["endpoints", "remove", "vllm"]) == 1
    assert "No endpoint named 'vllm'" in capsys.readouterr().err


def test_a_damaged_endpoints_file_is_kept_aside() -> None:
    (paths.data_dir() / "endpoints.json").write_text("{oops")
    assert EndpointStore().list() == []
    assert len(list(paths.data_dir().glob("endpoints.json.damaged-*"))) == 1
