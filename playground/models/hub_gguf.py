"""GGUF repositories on the Hugging Face Hub by id, as llama.cpp's ``-hf`` and Ollama's ``hf.co/`` name them:
``org/Name-GGUF:Q4_K_M`` is that repository's Q4_K_M file (the quantization matched as a whole word of the file
name or of its folder, any case). The repository's file list is asked for first and only that model's file (or
split parts) is fetched: a GGUF repository holds a dozen quantizations of several GB each. One already in the
Hugging Face cache is used as it is."""

from __future__ import annotations

import re
from pathlib import Path

from playground.errors import ModelNotFound, UnsupportedModel
from playground.models.gguf_parts import is_model_folder, models_in_folder, split_parts

_QUANT = re.compile(r"^[A-Za-z0-9_]+$")
_TAG = re.compile(r"(?:^|[-_.])((?:I?Q\d|BF16|F16|F32|TQ\d|MXFP4)[A-Za-z0-9_]*?)(?:-\d{5}-of-\d{5})?\.gguf$",
                  re.IGNORECASE)


_PREFIXES = ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "https://hf.co/", "hf.co/")


def split_quant(model_id: str) -> tuple[str, str | None]:
    """``org/name:QUANT`` -> (``org/name``, ``QUANT``); an id without one -> (id, None). The Hub's address before
    the id, as Ollama (``hf.co/org/name:QUANT``) and a browser's address bar write it, is left out."""
    for prefix in _PREFIXES:
        if model_id.lower().startswith(prefix):
            model_id = model_id[len(prefix):].rstrip("/")
            break
    repo, sep, quant = model_id.partition(":")
    if sep and "/" in repo and _QUANT.match(quant):
        return repo, quant
    return model_id, None


def _word(quant: str) -> re.Pattern[str]:
    """``quant`` as a word of a file's path in the repository, any case (``Q4_K`` is a word of ``…-Q4_K_M.gguf``
    too: ``_exact`` then prefers the file whose quantization it is in full)."""
    return re.compile(rf"(?:^|[-_./]){re.escape(quant)}(?:[-_./]|$)", re.IGNORECASE)


def _exact(found: dict[str, str], quant: str) -> dict[str, str]:
    """Of several matches (key -> a file name), those whose quantization is ``quant`` in full (``Q4_0`` rather than
    ``Q4_0_4_4``), where there are any."""
    exact = {key: name for key, name in found.items() if quant_tags([name]) == [quant.upper()]}
    return exact or found


def choose(names: list[str], quant: str, repo: str) -> list[str]:
    """Of the repository's files (paths in it, as the Hub lists them), those of the one model ``quant`` names: its
    file, or all its split parts; chosen before anything is fetched, so a loose name never fetches several models
    of gigabytes each."""
    word = _word(quant)
    models: dict[str, list[str]] = {}
    for name in sorted(names):
        path = Path(name)
        if path.suffix.lower() != ".gguf" or path.name.lower().startswith("mmproj") or not word.search(name[:-5]):
            continue
        parts = split_parts(path)
        models.setdefault(str(parts[0]) if parts else name, []).append(name)
    if len(models) > 1:
        models = {key: models[key] for key in _exact({key: names[0] for key, names in models.items()}, quant)}
    if len(models) == 1:
        return next(iter(models.values()))
    if not models:
        tags = quant_tags(names)
        offer = f" (it has {', '.join(tags)})" if tags else ""
        raise ModelNotFound(f"{repo} has no GGUF file of {quant}{offer}")
    raise UnsupportedModel(f"{repo}:{quant} matches {len(models)} models ({', '.join(models)}): name its "
                           f"quantization in full")


def models_in_snapshot(snapshot: Path) -> list[Path]:
    """The GGUF models (a split one by its first part) of a repository's snapshot, in its subfolders too: large
    models' parts sit in a folder named after their quantization (Q4_K_M/Name-Q4_K_M-00001-of-00002.gguf)."""
    if is_model_folder(snapshot):
        return []  # a transformers repository that also offers GGUF files is loaded as one
    return [p for folder in sorted({p.parent for p in snapshot.rglob("*.gguf")}) for p in models_in_folder(folder)]


def tag(snapshot: Path, model: Path) -> str:
    """The quantization a model file of a snapshot is listed under (Q4_K_M, …; else its path in the snapshot)."""
    found = quant_tags([model.name])
    return found[0] if found else model.relative_to(snapshot).as_posix().removesuffix(".gguf")


def pick(snapshot: Path, quant: str, repo: str) -> Path:
    """The model file (a split one's first part) of ``quant`` in a fetched or cached snapshot of ``repo``."""
    word = _word(quant)
    found = [p for p in models_in_snapshot(snapshot) if word.search(p.relative_to(snapshot).as_posix()[:-5])]
    if len(found) > 1:
        found = [Path(key) for key in _exact({str(p): p.name for p in found}, quant)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelNotFound(f"{repo} has no GGUF file of {quant}")
    raise UnsupportedModel(f"{repo}:{quant} matches {len(found)} files ({', '.join(p.name for p in found)}): name "
                           f"the one you want as a path")


def quant_tags(file_names: list[str]) -> list[str]:
    """The quantizations a repository's GGUF file names offer (Q4_K_M, Q8_0, …), once each, sorted."""
    tags = {m[1].upper() for name in file_names if (m := _TAG.search(name)) and "mmproj" not in name.lower()}
    return sorted(tags)


def remote_files(repo: str) -> list[str]:
    """The repository's files as the Hub lists them (paths in it); ModelNotFound where it cannot be asked."""
    try:
        from huggingface_hub import HfApi, constants

        if constants.HF_HUB_OFFLINE:
            raise ConnectionError("HF_HUB_OFFLINE is set")
        return list(HfApi().list_repo_files(repo))
    except Exception as exc:  # noqa: BLE001 - offline, no such repository, refused: all "cannot fetch it"
        raise ModelNotFound(f"{repo} is not in the Hugging Face cache and could not be listed "
                            f"({type(exc).__name__}); check the id and your connection") from exc


def name_one(repo: str, ask_hub: bool) -> UnsupportedModel:
    """What to say of a repository without a model's config.json, as a GGUF repository asked for without a
    quantization is: the ones it has (``ask_hub``: asked of the Hub, which has just answered; else, or where it
    does not answer now, the form of the id)."""
    tags: list[str] = []
    if ask_hub:
        try:
            tags = quant_tags(remote_files(repo))
        except ModelNotFound:  # the Hub refused: the message goes without the list
            tags = []
    if not tags:
        return UnsupportedModel(f"{repo} has no config.json, so it is not a transformers model; if it holds GGUF "
                                f"files, name a quantization: {repo}:Q4_K_M")
    offer = ", ".join(tags[:8]) + (" …" if len(tags) > 8 else "")
    example = next((t for t in ("Q4_K_M", "Q4_0", "Q5_K_M", "Q8_0") if t in tags), tags[0])  # a common choice
    return UnsupportedModel(f"{repo} holds GGUF files, not a transformers model: name a quantization, e.g. "
                            f"{repo}:{example} (it has {offer})")
