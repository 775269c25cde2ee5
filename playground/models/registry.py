"""The model registry: every model the app can use, by id, with kind, source and size on disk.

Sources: the embedded default, the Hugging Face cache, folders and GGUF files the user added (kept in
``models.json`` in the data dir), any Hugging Face id, resolved through the cache, and the default models of
remote endpoints (``remote:<endpoint>/<model>``, listed without asking the server; they load through
``playground.runtime.dispatch``, not from files). LoRA adapters (``BASE+name``, ``playground.models.adapters``) are
listed right after their base and resolve to the base's folder plus the adapter's.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from playground import jsonfile, paths
from playground.domain.jobs import ProgressEvent
from playground.domain.models import ModelInfo, is_remote, remote_id
from playground.errors import KnownError, ModelNotFound, UnsupportedModel
from playground.models import adapters, demo_image, embedded, hub_gguf, ollama_store
from playground.models.convert import ProgressFn, convert_gguf, is_converted
from playground.models.gguf_parts import is_gguf_file, is_model_folder, model_stem, parts_size, the_model_in

USER_MODELS_FILE = "models.json"


@dataclass(frozen=True)
class ResolvedModel:
    info: ModelInfo
    folder: Path  # a loadable folder (converted when the source was a GGUF file), or the GGUF file (``gguf``)
    adapter: Path | None = None  # a LoRA adapter folder to merge into it (a ``BASE+name`` id)
    gguf: Path | None = None  # a GGUF file the engine reads directly (``resolve(..., direct_gguf=True)``)


def folder_size(path: Path) -> int:
    if path.is_file():
        return parts_size(path)  # a split GGUF's part: all its parts
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())  # follows HF cache symlinks


def folder_kind(path: Path) -> str:
    """'image' for a diffusers pipeline folder, else 'text'."""
    return "image" if (path / "model_index.json").is_file() else "text"


class Registry:
    def __init__(self) -> None:
        self._file = paths.data_dir() / USER_MODELS_FILE

    # -- listing -------------------------------------------------------------------------------------------
    def list(self, include_hf_cache: bool = True) -> list[ModelInfo]:
        """All models: the embedded text and demo image models first, then user-added ones, then the HF cache and
        the models pulled with Ollama (``include_hf_cache``: those two stores)."""
        models = [self._embedded_info(), demo_image.demo_image_info()]
        models += [self._user_info(entry) for entry in self._load_user_entries()]
        models += _remote_defaults()
        if include_hf_cache:
            models += _hf_cache_models() + _ollama_models()
        return _with_adapters(models)

    def _embedded_info(self) -> ModelInfo:
        folder = embedded.embedded_dir()
        if is_converted(folder):
            return ModelInfo(id=embedded.EMBEDDED_ID, kind="text", source="embedded", path=str(folder),
                             size_bytes=folder_size(folder), ready=True)
        gguf = embedded.local_gguf()  # read directly: ready without a conversion
        return ModelInfo(id=embedded.EMBEDDED_ID, kind="text", source="embedded", path=str(gguf or folder),
                         size_bytes=folder_size(gguf) if gguf else 0, ready=gguf is not None)

    def _user_info(self, entry: dict[str, str]) -> ModelInfo:
        path = Path(entry["path"])
        exists = path.exists()
        kind = entry.get("kind") or (folder_kind(path) if path.is_dir() else "text")
        return ModelInfo(id=entry["id"], kind=kind, source=entry["source"], path=str(path),
                         size_bytes=folder_size(path) if exists else 0, ready=exists, missing=not exists)

    # -- adding and removing -------------------------------------------------------------------------------
    def add(self, path: str | os.PathLike[str]) -> ModelInfo:
        """Register a model folder or a .gguf file under an id made from its name; return its entry."""
        p = Path(path).expanduser().resolve()
        if is_gguf_file(p):
            source = "gguf"
        elif is_model_folder(p):
            source = "folder"
        elif p.exists():
            raise UnsupportedModel(f"{p} is neither a model folder (config.json) nor a .gguf file")
        else:
            raise ModelNotFound(f"{p} does not exist")
        entries = self._load_user_entries()
        for entry in entries:
            if Path(entry["path"]) == p:
                return self._user_info(entry)
        taken = {m.id for m in self.list(include_hf_cache=False)}
        base = model_stem(p) if source == "gguf" else p.name
        model_id, n = base, 2
        while model_id in taken:
            model_id, n = f"{base}-{n}", n + 1
        entry = {"id": model_id, "source": source, "path": str(p)}
        self._save_user_entries([*entries, entry])
        return self._user_info(entry)

    def remove(self, model_id: str) -> None:
        """Forget a user-added model, or delete a fine-tuned adapter (``BASE+name``: its files are the app's)."""
        if adapters.find(model_id) is not None:
            adapters.delete(model_id)
            return
        entries = self._load_user_entries()
        kept = [e for e in entries if e["id"] != model_id]
        if len(kept) == len(entries):
            raise ModelNotFound(f"No user-added model with id {model_id!r}")
        self._save_user_entries(kept)

    def _load_user_entries(self) -> list[dict[str, str]]:
        entries = jsonfile.load_object(self._file).get("models")
        keys = ("id", "source", "path")
        return [e for e in entries if isinstance(e, dict) and all(isinstance(e.get(k), str) for k in keys)] \
            if isinstance(entries, list) else []

    def _save_user_entries(self, entries: list[dict[str, str]]) -> None:
        jsonfile.save(self._file, {"models": entries})

    # -- resolving -----------------------------------------------------------------------------------------
    def resolve(self, model_id: str, on_progress: ProgressFn = lambda e: None,
                direct_gguf: bool = False) -> ResolvedModel:
        """Return a loadable folder for ``model_id``: a registered id, a path, or a Hugging Face id.
        ``direct_gguf``: a GGUF file is returned as it is (``ResolvedModel.gguf``), for a caller that reads GGUF
        itself; else it is converted once into a folder (transformers' path)."""
        if is_remote(model_id):
            raise UnsupportedModel(f"{model_id} is served by a remote endpoint: it has no files here")
        adapter = adapters.find(model_id)
        if adapter is not None:
            try:
                base = self.resolve(adapter.base, on_progress)
            except ModelNotFound as exc:
                raise ModelNotFound(f"{model_id} is an adapter of {adapter.base!r}, which is not available: "
                                    f"{exc}") from exc
            return ResolvedModel(_adapter_info(adapter), base.folder, adapter.folder)
        if model_id == embedded.EMBEDDED_ID:
            if direct_gguf and not is_converted(embedded.embedded_dir()):
                # its GGUF read directly (~0.2 s) rather than converted by transformers first (35-70 s)
                gguf = embedded.gguf_file(on_progress)
                return ResolvedModel(self._embedded_info(), gguf, gguf=gguf)
            folder = embedded.ensure_embedded(on_progress)
            return ResolvedModel(self._embedded_info(), folder)
        if model_id == demo_image.DEMO_IMAGE_ID:
            return ResolvedModel(demo_image.demo_image_info(), demo_image.demo_image_folder())
        for entry in self._load_user_entries():
            if entry["id"] == model_id:
                return self._resolve_path(self._user_info(entry), on_progress, direct_gguf)
        if model_id.startswith(ollama_store.PREFIX):
            pulled = ollama_store.find(model_id)
            if pulled is None:
                where = " or ".join(str(p) for p in ollama_store.stores())
                raise ModelNotFound(f"{model_id} is not among the models pulled with Ollama in {where} "
                                    f"(`ollama pull {model_id[len(ollama_store.PREFIX):]}` fetches it)")
            return self._resolve_path(_ollama_info(pulled), on_progress, direct_gguf)
        for info in _hf_cache_models():
            if info.id == model_id:
                return self._from_snapshot(info, on_progress, direct_gguf)
        as_path = Path(model_id).expanduser()
        if as_path.exists():
            p = the_model_in(as_path.resolve())
            source = "gguf" if is_gguf_file(p) else "folder"
            info = ModelInfo(id=model_stem(p) if source == "gguf" else p.name,
                             kind=folder_kind(p) if p.is_dir() else "text", source=source,
                             path=str(p), size_bytes=folder_size(p))
            return self._resolve_path(info, on_progress, direct_gguf)
        if "/" in model_id and not model_id.startswith((".", "/")):
            repo, quant = hub_gguf.split_quant(model_id)
            if quant is not None:
                return self._hub_gguf(model_id, repo, quant, on_progress, direct_gguf)
            return self._from_snapshot(_hf_download(repo, on_progress).info, on_progress, direct_gguf, True)
        raise ModelNotFound(f"Unknown model {model_id!r}; `playground models` lists the available ones")

    def _from_snapshot(self, info: ModelInfo, on_progress: ProgressFn, direct_gguf: bool,
                       fetched: bool = False) -> ResolvedModel:
        """A Hugging Face cache snapshot: the folder, or a GGUF repository's one model file (``the_model_in``);
        ``fetched``: just downloaded (the Hub answers, and can say what a GGUF repository holds)."""
        snapshot = Path(info.path or "")
        gguf = the_model_in(snapshot, info.id)  # (a listed quantization's entry is its file already)
        if is_gguf_file(gguf):
            return self._resolve_path(replace(info, source="gguf", path=str(gguf)), on_progress, direct_gguf)
        if not is_model_folder(snapshot):
            raise hub_gguf.name_one(info.id, fetched)  # e.g. a GGUF repository asked for without a quantization
        return ResolvedModel(info, snapshot)

    def _hub_gguf(self, model_id: str, repo: str, quant: str, on_progress: ProgressFn,
                  direct_gguf: bool) -> ResolvedModel:
        """``org/Name-GGUF:QUANT`` (``hub_gguf``): that file from the Hugging Face cache, or fetched alone."""
        cached = _cached_repos().get(repo)
        try:
            gguf = hub_gguf.pick(cached[0], quant, repo) if cached else None
        except ModelNotFound:
            gguf = None  # not fetched yet
        if gguf is None:
            on_progress(ProgressEvent(f"Looking up {repo}", None))
            wanted = hub_gguf.choose(hub_gguf.remote_files(repo), quant, repo)
            gguf = hub_gguf.pick(Path(_hf_download(repo, on_progress, wanted).info.path or ""), quant, repo)
        info = ModelInfo(id=model_id, kind="text", source="gguf", path=str(gguf), size_bytes=parts_size(gguf))
        return self._resolve_path(info, on_progress, direct_gguf)

    def _resolve_path(self, info: ModelInfo, on_progress: ProgressFn, direct_gguf: bool = False) -> ResolvedModel:
        path = Path(info.path or "")
        if not path.exists():
            raise ModelNotFound(f"Model {info.id!r} points at {path}, which no longer exists")
        if info.source == "gguf" and direct_gguf:
            return ResolvedModel(info, path, gguf=path)
        if info.source == "gguf":
            return ResolvedModel(info, converted_gguf(path, on_progress))
        return ResolvedModel(info, path)


def _adapter_info(adapter: adapters.AdapterInfo) -> ModelInfo:
    return ModelInfo(id=adapter.id, kind="text", source="adapter", path=str(adapter.folder),
                     size_bytes=adapter.size_bytes())


def _with_adapters(models: list[ModelInfo]) -> list[ModelInfo]:
    """``models`` with each saved adapter right after its base (at the end when the base is not listed)."""
    out = list(models)
    for adapter in reversed(adapters.list_adapters()):
        at = next((i for i, m in enumerate(out) if m.id == adapter.base), None)
        out.insert(len(out) if at is None else at + 1, _adapter_info(adapter))
    return out


def _remote_defaults() -> list[ModelInfo]:
    """Each endpoint's default model (no network: the server's full list comes from list_remote_models)."""
    from playground.models.endpoints import EndpointStore

    return [ModelInfo(id=remote_id(e.name, e.model), kind="text", source="remote", path=e.base_url)
            for e in EndpointStore().list() if e.model]


def converted_gguf(gguf: Path, on_progress: ProgressFn) -> Path:
    """``gguf`` converted by transformers into a safetensors folder (once; reused while the file is unchanged)."""
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:10]
    out = paths.models_dir() / f"gguf-{gguf.stem}-{key}"
    if is_converted(out):
        return out
    return convert_gguf(gguf, out, on_progress)


def _ollama_info(pulled: ollama_store.OllamaModel) -> ModelInfo:
    return ModelInfo(id=ollama_store.PREFIX + pulled.name, kind="text", source="gguf", path=str(pulled.blob),
                     size_bytes=pulled.size_bytes)


def _ollama_models() -> list[ModelInfo]:
    """The models pulled with Ollama (``ollama_store``), listed as ``ollama:NAME:TAG``."""
    return [replace(_ollama_info(m), source="ollama") for m in ollama_store.models()]


def _cached_repos() -> dict[str, tuple[Path, int]]:
    """The Hugging Face cache's model repositories: id -> (latest snapshot, bytes on disk)."""
    try:
        from huggingface_hub import constants, scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return {}
    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)  # (its own default is the value when it was imported)
    except (CacheNotFound, OSError, ValueError):
        return {}
    found = {}
    for repo in sorted(cache.repos, key=lambda r: r.repo_id):
        if repo.repo_type == "model" and repo.revisions:
            rev = max(repo.revisions, key=lambda r: r.last_modified)
            found[repo.repo_id] = (Path(rev.snapshot_path), int(repo.size_on_disk))
    return found


def _hf_cache_models() -> list[ModelInfo]:
    """The Hugging Face cache's models: a repository each, or, for a GGUF repository, each quantization fetched
    (``org/Name-GGUF:Q4_K_M``, the id that fetches it)."""
    out = []
    for repo_id, (snapshot, size) in _cached_repos().items():
        ggufs = hub_gguf.models_in_snapshot(snapshot)
        out += [ModelInfo(id=f"{repo_id}:{hub_gguf.tag(snapshot, g)}", kind="text", source="hf-cache", path=str(g),
                          size_bytes=parts_size(g)) for g in ggufs]
        if not ggufs:
            out.append(ModelInfo(id=repo_id, kind=folder_kind(snapshot), source="hf-cache", path=str(snapshot),
                                 size_bytes=size))
    return out


def download_progress(repo_id: str, on_progress: ProgressFn) -> type:
    """A tqdm class for huggingface_hub downloads that reports its progress as ProgressEvents."""
    from tqdm.auto import tqdm

    class _Progress(tqdm):  # type: ignore[misc]
        def update(self, n: float | None = 1) -> bool | None:
            shown = super().update(n)
            if self.total:
                on_progress(ProgressEvent(f"Downloading {repo_id}", min(1.0, self.n / self.total)))
            return shown

    return _Progress


def _hf_download(repo_id: str, on_progress: ProgressFn, patterns: list[str] | None = None) -> ResolvedModel:
    """Fetch a Hugging Face repo into the HF cache (safetensors and configs only, or the files ``patterns``
    match), with progress."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError
    patterns = patterns or ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "tokenizer*"]
    try:
        on_progress(ProgressEvent(f"Looking up {repo_id}", None))
        folder = Path(snapshot_download(repo_id, allow_patterns=patterns,
                                        tqdm_class=download_progress(repo_id, on_progress)))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelNotFound(f"{repo_id} is not in the Hugging Face cache and could not be downloaded "
                            f"({type(exc).__name__}); check the id and your connection") from exc
    except ValueError as exc:
        raise KnownError(f"Could not fetch {repo_id}: {exc}") from exc
    info = ModelInfo(id=repo_id, kind=folder_kind(folder), source="hf-cache", path=str(folder),
                     size_bytes=folder_size(folder))
    return ResolvedModel(info, folder)
