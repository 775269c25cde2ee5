"""Text-to-image on diffusers pipelines: load (folder, single file, Hugging Face id), generate with a preview per step.

``generate(model, request, on_event, cancel)`` mirrors the text engine: events stream from the pipeline's
``callback_on_step_end``; cancelling sets the pipeline's interrupt flag, so it stops within one step, and the run
returns no images (nothing half-denoised is decoded or saved). torch and diffusers are imported lazily.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from playground.domain.image import MAX_BATCH, ImageRequest, ImageResult, StepEvent
from playground.domain.jobs import Cancel, ProgressEvent
from playground.engine import image_schedulers
from playground.errors import KnownError, ModelNotFound, OutOfMemory, UnsupportedModel
from playground.models.demo_image import DEMO_IMAGE_ID, demo_image_folder, playground_meta

if TYPE_CHECKING:
    import torch

StepFn = Callable[[StepEvent], None]
ProgressFn = Callable[[ProgressEvent], None]

SUPPORTED = ("StableDiffusionPipeline", "StableDiffusionXLPipeline")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")
# Linear latent -> RGB maps (rows: latent channels, then bias) for a cheap preview, on the pipeline's scaled latents.
_SD1_RGB = [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
            [-0.2120, -0.2616, -0.7177], [0.0, 0.0, 0.0]]
_SDXL_RGB = [[0.3651, 0.4232, 0.4341], [-0.2533, -0.0042, 0.1068], [0.1076, 0.1111, -0.0362],
             [-0.3165, -0.2492, -0.2188], [0.1084, -0.0175, -0.0011]]
# family -> (steps, guidance); sizes come from the UNet's sample size
FAMILY_DEFAULTS = {"sd1": (25, 7.0), "sd2": (25, 7.0), "sdxl": (30, 6.0), "sd-turbo": (1, 0.0),
                   "sdxl-turbo": (1, 0.0), "sd": (20, 5.0), "demo": (20, 3.0)}


@dataclass
class ImageModel:
    """A loaded pipeline with what the UI needs to know about it."""

    id: str
    pipe: Any
    device: Any  # torch.device
    dtype: Any  # torch.dtype
    family: str  # demo | sd1 | sd2 | sd-turbo | sdxl | sdxl-turbo | sd
    defaults: dict[str, Any]  # steps, guidance, width, height
    demo: bool = False
    description: str = ""
    load_s: float = 0.0
    preview_rgb: list[list[float]] = field(default_factory=lambda: _SD1_RGB)
    preview_unscaled: bool = False  # the demo's map was fitted on unscaled latents
    base_scheduler: Any = None
    schedulers: list[str] = field(default_factory=list)
    _preview_matrix: Any = field(default=None, repr=False)

    @property
    def size_multiple(self) -> int:
        return 8

    def check_size(self, width: int, height: int) -> None:
        """Raise KnownError unless width/height fit this model (multiples of 8, within 1/4 to 2× its native size)."""
        native = max(self.defaults["width"], self.defaults["height"])
        lo, hi = max(8 * self.pipe.vae_scale_factor // 2, native // 4), min(2048, native * 2)
        for name, side in (("width", width), ("height", height)):
            if side % self.size_multiple or not lo <= side <= hi:
                raise KnownError(f"{name} {side} does not fit {self.id}: use a multiple of {self.size_multiple} "
                                 f"between {lo} and {hi} (native {native})")

    def preview(self, latents: torch.Tensor) -> Any:
        """A uint8 (h, w, 3) numpy image of one latent (C, h, w): a linear map, no VAE (cheap enough per step)."""
        import torch

        lat = latents.detach().float()
        if self.preview_unscaled:
            lat = lat / float(self.pipe.vae.config.scaling_factor)
        m = self._preview_matrix
        if m is None or m.device != lat.device:
            m = self._preview_matrix = torch.tensor(self.preview_rgb, dtype=lat.dtype, device=lat.device)  # (C+1, 3)
        c = min(lat.shape[0], m.shape[0] - 1)
        rgb = torch.einsum("chw,cr->hwr", lat[:c], m[:c]) + m[-1]  # (h, w, 3) in about [-1, 1]
        return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()

    def unload(self) -> None:
        from playground.engine.device import free_memory

        self.pipe = None
        free_memory(self.device)


def resolve_image_source(model_id: str, on_progress: ProgressFn = lambda e: None, half: bool = False) -> Path:
    """A folder or checkpoint file for ``model_id``: the demo model, a path, or anything the registry resolves
    (a registered id, the HF cache, or a Hugging Face id downloaded with progress)."""
    if model_id == DEMO_IMAGE_ID:
        folder = demo_image_folder()
        if not (folder / "model_index.json").is_file():
            raise ModelNotFound(f"The demo image model is missing from {folder}; reinstall Playground")
        return folder
    path = Path(model_id).expanduser()
    if path.exists():
        return path.resolve()
    if _looks_like_path(model_id):
        raise ModelNotFound(f"{model_id} does not exist. {IMAGE_MODEL_FORMS}")
    from playground.models.registry import Registry

    registry = Registry()
    if model_id in {m.id for m in registry.list()} or "/" not in model_id:
        try:
            return registry.resolve(model_id, on_progress).folder  # registered, or in the HF cache: no download
        except ModelNotFound as exc:
            raise ModelNotFound(f"{exc}. {IMAGE_MODEL_FORMS}") from exc
    if not _HF_ID.fullmatch(model_id):
        raise ModelNotFound(f"{model_id!r} is neither a file or folder here nor a Hugging Face id. {IMAGE_MODEL_FORMS}")
    return hf_image_download(model_id, on_progress, half)


IMAGE_MODEL_FORMS = ("An image model is demo-shapes, a diffusers folder (holding model_index.json), a .safetensors "
                     "checkpoint file, or a Hugging Face id such as stabilityai/sd-turbo")
_HF_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")  # owner/name, as the Hub accepts them


def _looks_like_path(model_id: str) -> bool:
    """A path the user meant as a file or folder (absolute, home, relative, a drive, a checkpoint suffix)."""
    return (model_id.startswith(("/", "~", ".", "\\")) or (len(model_id) > 1 and model_id[1] == ":")
            or model_id.count("/") > 1 or model_id.lower().endswith((".safetensors", ".ckpt", ".pt", ".bin")))


def hf_image_download(repo_id: str, on_progress: ProgressFn = lambda e: None, half: bool = False) -> Path:
    """Fetch a diffusers pipeline repo into the HF cache with progress: the component folders' configs and
    safetensors only (not root-level single-file checkpoints), the fp16 variant when ``half`` and the repo has it."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    from playground.models.registry import download_progress

    _Progress = download_progress(repo_id, on_progress)
    try:
        on_progress(ProgressEvent(f"Looking up {repo_id}", None))
        files = HfApi().list_repo_files(repo_id)
        if "model_index.json" not in files:
            raise UnsupportedModel(f"{repo_id} is not a diffusers pipeline (no model_index.json)")
        fp16 = half and any(f.endswith(".fp16.safetensors") for f in files)
        weights = ["*/*.fp16.safetensors"] if fp16 else ["*/*.safetensors"]
        ignore = [] if fp16 else ["*.fp16.safetensors"]
        folder = Path(snapshot_download(repo_id, allow_patterns=["model_index.json", "*/*.json", "*/*.txt",
                                                                 "*/*.model", *weights],
                                        ignore_patterns=ignore, tqdm_class=_Progress))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelNotFound(f"{repo_id} is not in the Hugging Face cache and could not be downloaded "
                            f"({type(exc).__name__}); check the id and your connection") from exc
    return folder


def load_image_model(model_id: str, source: Path | None = None, device: str | None = None, dtype: str | None = None,
                     allow_pickle: bool = False, on_progress: ProgressFn = lambda e: None,
                     single_file_config: str | None = None) -> ImageModel:
    """Load a text-to-image pipeline: a diffusers folder (``from_pretrained``) or one checkpoint file
    (``from_single_file``; safetensors only unless ``allow_pickle``). fp16/bf16 on CUDA, fp32 on CPU.
    (``runtime.dispatch.load_image_model`` also takes ``remote:`` ids.)"""
    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from playground.engine.device import choose_device, choose_dtype

    diffusers_logging.disable_progress_bar()  # the CLI and the UI show their own progress
    transformers_logging.disable_progress_bar()
    t0 = time.perf_counter()
    dev = choose_device(device)
    dt = choose_dtype(dev, dtype)
    source = source or resolve_image_source(model_id, on_progress, half=dt != torch.float32)
    hint = playground_meta(source).get("dtype") if source.is_dir() and dtype is None else None
    if hint:
        dt = choose_dtype(dev, str(hint))  # the tiny demo model was trained in fp32 and loses its colours in bf16
    on_progress(ProgressEvent(f"Loading {model_id}", None))
    try:
        if source.is_file():
            pipe = _load_single_file(source, dt, allow_pickle, single_file_config)
        else:
            pipe = _load_folder(source, dt, allow_pickle)
        pipe.to(dev)
    except torch.OutOfMemoryError as exc:
        from playground.engine.device import free_memory

        free_memory(dev)
        raise OutOfMemory(f"Out of memory on {dev} loading {model_id}; memory was freed. "
                          "Close other models or use a smaller one") from exc
    pipe.set_progress_bar_config(disable=True)
    meta = playground_meta(source) if source.is_dir() else {}
    family = _family(pipe, f"{model_id} {source}", meta)
    steps, guidance = FAMILY_DEFAULTS[family]
    native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    defaults = {"steps": int(meta.get("default_steps", steps)),
                "guidance": float(meta.get("default_guidance", guidance)),
                "width": int(meta.get("width", native)), "height": int(meta.get("height", native))}
    model = ImageModel(
        id=model_id, pipe=pipe, device=dev, dtype=dt, family=family, defaults=defaults, demo=bool(meta.get("demo")),
        description=str(meta.get("description", "")), base_scheduler=pipe.scheduler,
        schedulers=image_schedulers.applicable(type(pipe.scheduler).__name__, f"{model_id} {source}"))
    if meta.get("preview_rgb"):
        model.preview_rgb, model.preview_unscaled = meta["preview_rgb"], True
    elif family.startswith("sdxl"):
        model.preview_rgb = _SDXL_RGB
    model.load_s = time.perf_counter() - t0
    on_progress(ProgressEvent(f"Loaded {model_id}", 1.0))
    return model


def _pickle_only_parts(folder: Path) -> list[str]:
    """The pipeline's parts (unet, vae, text_encoder …) whose weights exist only as pickles (.bin/.pt/.ckpt)."""
    parts = []
    for part in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = [f for f in part.iterdir() if f.is_file()]
        if any(f.suffix in PICKLE_SUFFIXES for f in files) and not any(f.suffix == ".safetensors" for f in files):
            parts.append(part.name)
    return parts


def _load_folder(folder: Path, dt: torch.dtype, allow_pickle: bool = False) -> Any:
    from diffusers import DiffusionPipeline

    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{folder} is not a diffusers pipeline folder (no readable model_index.json)") from exc
    cls = index.get("_class_name", "")
    if cls not in SUPPORTED:
        raise UnsupportedModel(f"{folder.name} is a {cls or 'unknown'} folder; the image mode runs "
                               f"{' and '.join(SUPPORTED)} (SD 1.x/2.x, SD-Turbo, SDXL, SDXL-Turbo)")
    pickled = _pickle_only_parts(folder)
    if pickled and not allow_pickle:
        raise UnsupportedModel(f"{folder.name} holds pickle weights only ({', '.join(pickled)}: .bin/.pt), which can "
                               "run code when loaded; convert them to .safetensors, or allow pickle weights "
                               "explicitly if you trust the source (--allow-pickle)")
    # safetensors only unless pickles are allowed: diffusers would otherwise fall back to a .bin beside them
    kwargs: dict[str, Any] = {"dtype": dt, "use_safetensors": None if allow_pickle else True}
    if cls == "StableDiffusionPipeline":
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    if str(dt) != "torch.float32" and any(folder.glob("*/*.fp16.safetensors")):
        kwargs["variant"] = "fp16"
    try:
        return DiffusionPipeline.from_pretrained(folder, **kwargs)
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"Could not load {folder.name}: {exc}") from exc


def _load_single_file(path: Path, dt: torch.dtype, allow_pickle: bool, config: str | None) -> Any:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise UnsupportedModel(f"{path.name} is a pickle checkpoint, which can run code when loaded; convert it to "
                               ".safetensors, or allow pickle checkpoints explicitly (--allow-pickle)")
    if suffix != ".safetensors" and suffix not in PICKLE_SUFFIXES:
        raise UnsupportedModel(f"{path.name}: single-file checkpoints must be .safetensors")
    cls = StableDiffusionXLPipeline if _is_sdxl_checkpoint(path) else StableDiffusionPipeline
    kwargs: dict[str, Any] = {"dtype": dt}
    if config:
        kwargs["config"] = config
    try:
        from diffusers.loaders.single_file_utils import SingleFileComponentError
    except ImportError:  # moved in another diffusers version
        SingleFileComponentError = ValueError  # noqa: N806
    try:
        return cls.from_single_file(str(path), **kwargs)
    except (OSError, ValueError, KeyError, SingleFileComponentError) as exc:
        raise UnsupportedModel(f"Could not load {path.name} as a {cls.__name__} checkpoint: {exc}") from exc


def _is_sdxl_checkpoint(path: Path) -> bool:
    if path.suffix.lower() != ".safetensors":
        return False
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return any(k.startswith("conditioner.embedders.1") for k in f.keys())


def _family(pipe: Any, hint: str, meta: dict[str, Any]) -> str:
    if meta.get("demo"):
        return "demo"
    turbo = "turbo" in hint.lower()
    if type(pipe).__name__ == "StableDiffusionXLPipeline":
        return "sdxl-turbo" if turbo else "sdxl"
    if turbo:
        return "sd-turbo"
    dim = pipe.unet.config.cross_attention_dim
    return {768: "sd1", 1024: "sd2"}.get(dim if isinstance(dim, int) else 0, "sd")


def settings_for(model: ImageModel, req: ImageRequest) -> dict[str, Any]:
    """The request with the model's defaults filled in: what the run will use and what the PNG records."""
    return {
        "prompt": req.prompt, "negative_prompt": req.negative_prompt,
        "steps": req.steps or model.defaults["steps"],
        "guidance": model.defaults["guidance"] if req.guidance is None else req.guidance,
        "width": req.width or model.defaults["width"], "height": req.height or model.defaults["height"],
        "scheduler": image_schedulers.canonical(req.scheduler), "batch": req.batch, "model": model.id,
    }


def generate(model: ImageModel, req: ImageRequest, on_event: StepFn = lambda e: None,
             cancel: Cancel | None = None) -> ImageResult:
    """Run ``req`` on ``model``; a StepEvent with a preview after every denoising step. Same seed and settings
    give the same images (noise drawn on the CPU). Cancelled: returns no images, ``cancelled=True``."""
    import torch

    from playground.engine.device import free_memory

    req.validate()
    cancel = cancel or Cancel()
    s = settings_for(model, req)
    model.check_size(s["width"], s["height"])
    name = s["scheduler"]
    if name == "default":
        model.pipe.scheduler = model.base_scheduler
        s["scheduler"] = image_schedulers.display_name(model.base_scheduler)
    else:
        model.pipe.scheduler = image_schedulers.make(name, model.base_scheduler.config)
    seed = req.seed if req.seed is not None else random.randrange(2**32 - MAX_BATCH)
    seeds = tuple(seed + i for i in range(req.batch))  # image i can be re-made alone with seed + i
    s["seed"] = seed
    generators = [torch.Generator(device="cpu").manual_seed(x) for x in seeds]
    _fit_memory(model, s["width"], s["height"], req.batch)
    started = time.perf_counter()
    steps_done = 0

    def on_step(pipe: Any, i: int, t: Any, kw: dict[str, Any]) -> dict[str, Any]:
        nonlocal steps_done
        steps_done = i + 1
        on_event(StepEvent(i + 1, s["steps"], model.preview(kw["latents"][0]), time.perf_counter() - started))
        if cancel.is_set():
            pipe._interrupt = True  # diffusers' own early-stop flag: the loop skips the remaining steps
        return kw

    result_args = {"model": model.id, "seeds": seeds, "settings": s, "device": str(model.device)}
    if cancel.is_set():
        return ImageResult(images=(), cancelled=True, **result_args)
    try:
        with torch.inference_mode():
            out = model.pipe(
                prompt=req.prompt, negative_prompt=req.negative_prompt or None, num_inference_steps=s["steps"],
                guidance_scale=s["guidance"], width=s["width"], height=s["height"],
                num_images_per_prompt=req.batch, generator=generators if req.batch > 1 else generators[0],
                output_type="latent", callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["latents"])
            denoise_s = time.perf_counter() - started
            if cancel.is_set():
                return ImageResult(images=(), cancelled=True,
                                   timings=_timings(model, denoise_s, denoise_s, steps_done), **result_args)
            images = decode(model.pipe, out.images)
    except torch.OutOfMemoryError as exc:
        free_memory(model.device)
        raise OutOfMemory(f"Out of memory on {model.device} at {s['width']}×{s['height']}, batch {req.batch}; "
                          "memory was freed. Lower the size or the batch") from exc
    total = time.perf_counter() - started
    return ImageResult(images=tuple(images), timings=_timings(model, total, denoise_s, steps_done), **result_args)


def _timings(model: ImageModel, total: float, denoise: float, steps: int) -> dict[str, float]:
    return {"load_s": round(model.load_s, 4), "total_s": round(total, 4),
            "s_per_step": round(denoise / max(steps, 1), 5), "steps": steps}


def decode(pipe: Any, latents: torch.Tensor) -> list[Any]:
    """PIL images from the pipeline's scaled latents (B, C, h, w), as the pipeline itself decodes them
    (fp16 SDXL VAEs upcast to fp32; SDXL latent mean/std when the VAE config has them)."""
    import torch

    vae = pipe.vae
    upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:
        vae.to(torch.float32)
    latents = latents.to(device=vae.device, dtype=vae.dtype)
    sf = vae.config.scaling_factor
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        m = torch.tensor(mean).view(1, -1, 1, 1).to(latents)
        sd = torch.tensor(std).view(1, -1, 1, 1).to(latents)
        latents = latents * sd / sf + m
    else:
        latents = latents / sf
    try:
        image = vae.decode(latents, return_dict=False)[0]
    finally:
        if upcast:
            vae.to(torch.float16)
    return pipe.image_processor.postprocess(image.float(), output_type="pil")


def _fit_memory(model: ImageModel, width: int, height: int, batch: int) -> None:
    """On CUDA with little free memory, slice attention and tile the VAE (slower, much smaller peaks)."""
    import torch

    if model.device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(model.device)
    pixels = width * height * batch
    short = free < 3 * 2**30 or (pixels >= 2 * 1024 * 1024 and free < 12 * 2**30)
    if short:
        model.pipe.enable_attention_slicing()
        model.pipe.vae.enable_tiling()
    else:
        model.pipe.disable_attention_slicing()
        model.pipe.vae.disable_tiling()
