"""Train the embedded demo text-to-image model ("demo-shapes"), saved as a diffusers StableDiffusionPipeline folder.

Data: coloured shapes drawn in code (playground.tasks.shapes), 64×64. Model: a word-level CLIPTokenizer built in
memory, a tiny CLIPTextModel, an AutoencoderKL (64×64×3 <-> 32×32×4) trained first as an autoencoder, then a small
UNet2DConditionModel trained in its latent space together with the text encoder (10% empty captions for CFG, EMA).
Ends by reloading the saved folder with ``StableDiffusionPipeline.from_pretrained``, picking guidance on the 20 tuning
prompts, scoring the 30 scored prompts at it with the shapes checker (both unseen in training; see
shapes.tuning_captions / scored_captions) and writing a sample grid. bench/demo_image_quality.py re-measures the
shipped folder the same way with several seeds per prompt.

    python scripts/train_demo_image_model.py --out assets/demo_image_model --unet-seconds 240 --vae-seconds 50
    python scripts/train_demo_image_model.py --out assets/demo_image_model --eval-only --guidance 3   # rates only

Seeded; with ``--unet-steps N --vae-steps M`` (and no time limit reached) a run is reproducible on the same device.
Device: CUDA when available (bf16 autocast), else CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch  # noqa: TID253 - a training script, not the app
import torch.nn.functional as F  # noqa: TID253

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.tasks import shapes  # noqa: E402

MAX_TOKENS = 32  # some words take several BPE tokens; the longest caption takes 24
GRID_PROMPTS = [
    "a red circle", "a blue square on a yellow background", "a green triangle at the top left", "a yellow circle",
    "a purple square", "an orange triangle on a blue background", "a white circle on a black background",
    "a black square on a white background", "a green circle on a red background", "a blue triangle",
    "a red square at the bottom right", "a yellow triangle on a purple background",
    "a white square on a green background",
    "an orange circle", "a purple triangle on a yellow background", "a black circle on an orange background",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_tokenizer():
    """A CLIPTokenizer whose BPE merges spell out each word of the caption grammar (one token per known word)."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    vocab: dict[str, int] = {}

    def add(tok: str) -> None:
        vocab.setdefault(tok, len(vocab))

    for ch in ByteLevel.alphabet():
        add(ch)
    for ch in ByteLevel.alphabet():
        add(ch + "</w>")
    merges: list[tuple[str, str]] = []
    for word in shapes.WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        cur = parts[0]
        for nxt in parts[1:]:
            merges.append((cur, nxt))
            cur = cur + nxt
            add(cur)
    add("<|startoftext|>")
    add("<|endoftext|>")
    tok = CLIPTokenizer(vocab=vocab, merges=merges)
    tok.model_max_length = MAX_TOKENS
    return tok


def tokenize(tok, texts: list[str]) -> torch.Tensor:
    """(B, MAX_TOKENS) ids, padded the way StableDiffusionPipeline pads prompts."""
    return tok(texts, padding="max_length", max_length=MAX_TOKENS, truncation=True, return_tensors="pt").input_ids


def build_models(vocab_size: int, tok):
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=vocab_size, hidden_size=128, intermediate_size=512, num_hidden_layers=3,
            num_attention_heads=4, max_position_embeddings=MAX_TOKENS, projection_dim=128,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
    )
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=32,
    )
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128, 128),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=128, attention_head_dim=4, norm_num_groups=32,
    )
    return text_encoder, vae, unet


def _render_chunk(args):
    seed, n, exclude = args
    rng = random.Random(seed)
    caps = [shapes.random_caption(rng, exclude) for _ in range(n)]
    return [c.text for c in caps], shapes.render(caps, 64, rng)


def make_pool(n: int, seed: int, workers: int):
    """n training images (uint8 N,64,64,3) with their captions; the held-out captions never appear."""
    exclude = frozenset(c.text for c in shapes.held_out_captions())
    chunk = 1000
    jobs = [(seed * 100_003 + i, min(chunk, n - i * chunk), exclude) for i in range(math.ceil(n / chunk))]
    if workers > 1:
        with Pool(workers) as p:
            parts = p.map(_render_chunk, jobs)
    else:
        parts = [_render_chunk(j) for j in jobs]
    texts = [t for p in parts for t in p[0]]
    images = np.concatenate([p[1] for p in parts])
    return texts, images


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0  # (B, 3, H, W) in [-1, 1]


def train_vae(vae, images_t, args, device, autocast):
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    vae.train()
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    t0 = time.time()
    step = 0
    while step < args.vae_steps and time.time() - t0 < args.vae_seconds:
        idx = torch.randint(0, len(images_t), (args.vae_batch,), generator=g)
        x = images_t[idx].to(device, non_blocking=True)
        with autocast():
            post = vae.encode(x).latent_dist
            z = post.sample()
            rec = vae.decode(z).sample
        loss_rec = F.mse_loss(rec.float(), x)
        loss_kl = post.kl().mean() / (z.shape[1] * z.shape[2] * z.shape[3])
        loss = loss_rec + args.vae_kl * loss_kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0 or step == 1:
            dt = time.time() - t0
            log(f"vae step {step} rec {loss_rec.item():.5f} kl {loss_kl.item():.3f} ({step / dt:.1f} steps/s)")
    log(f"vae: {step} steps in {time.time() - t0:.0f} s")
    vae.eval()
    return step


@torch.no_grad()
def encode_all(vae, images_t, device, batch=512) -> torch.Tensor:
    out = []
    for i in range(0, len(images_t), batch):
        out.append(vae.encode(images_t[i : i + batch].to(device)).latent_dist.mean.float())
    return torch.cat(out)  # (N, 4, 32, 32)


def fit_preview(vae, images_t, device) -> list[list[float]]:
    """Least-squares map from a latent pixel (4 channels + 1) to an RGB pixel in [-1, 1]: the cheap per-step preview."""
    with torch.no_grad():
        x = images_t[:512].to(device)
        z = vae.encode(x).latent_dist.mean.float()  # (B, 4, 32, 32)
        small = F.avg_pool2d(x, 2)  # (B, 3, 32, 32)
        a = torch.cat([z, torch.ones_like(z[:, :1])], 1).permute(0, 2, 3, 1).reshape(-1, 5)
        b = small.permute(0, 2, 3, 1).reshape(-1, 3)
        sol = torch.linalg.lstsq(a.cpu(), b.cpu()).solution  # (5, 3)
    return sol.tolist()


def train_unet(unet, text_encoder, latents, ids, uncond_ids, args, device, autocast):
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01, fused=device == "cuda")
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    ema_params = [*ema_unet.parameters(), *ema_text.parameters()]
    for p in ema_params:
        p.requires_grad_(False)
    alphas = sched.alphas_cumprod.to(device)
    g = torch.Generator(device="cpu").manual_seed(args.seed + 1)
    unet.train()
    text_encoder.train()
    t0 = time.time()
    step = 0
    losses: list[float] = []
    while step < args.unet_steps and time.time() - t0 < args.unet_seconds:
        idx = torch.randint(0, len(latents), (args.batch,), generator=g)
        z0 = latents[idx].to(device, non_blocking=True)  # (B, 4, 32, 32), already scaled
        tok = ids[idx].to(device, non_blocking=True)  # (B, T)
        drop = torch.rand(args.batch, generator=g) < args.cond_drop
        tok[drop.to(device)] = uncond_ids.to(device)
        noise = torch.randn(z0.shape, generator=g).to(device)
        noise = noise + args.noise_offset * torch.randn(z0.shape[0], z0.shape[1], 1, 1, generator=g).to(device)
        t = torch.randint(0, 1000, (args.batch,), generator=g).to(device)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        with autocast():
            enc = text_encoder(tok)[0]  # (B, T, 128)
            pred = unet(zt, t, enc).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        losses.append(loss.item())
        if step % 250 == 0 or step == 1:
            dt = time.time() - t0
            log(f"unet step {step} loss {np.mean(losses[-250:]):.4f} lr {lr:.2e} ({step / dt:.2f} steps/s)")
    log(f"unet: {step} steps in {time.time() - t0:.0f} s")
    return ema_unet, ema_text, step


def save_pipeline(out: Path, vae, text_encoder, tok, unet, meta: dict) -> None:
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    scheduler = DPMSolverMultistepScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, algorithm_type="dpmsolver++", solver_order=2,
    )
    pipe = StableDiffusionPipeline(
        vae=vae.float().cpu(), text_encoder=text_encoder.float().cpu(), tokenizer=tok, unet=unet.float().cpu(),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    pipe.save_pretrained(out, safe_serialization=True)
    (out / "playground.json").write_text(json.dumps(meta, indent=2))


def evaluate(out: Path, device: str, steps: int, guidance: float, seed: int,
             caps: list[shapes.Caption]) -> tuple[dict, list[np.ndarray]]:
    """Reloads the saved folder and scores ``caps``; returns the rates and the images."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(out).to(device)
    pipe.set_progress_bar_config(disable=True)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    images = pipe([c.text for c in caps], num_inference_steps=steps, guidance_scale=guidance, generator=gen,
                  output_type="np").images
    images = [(np.clip(im, 0, 1) * 255).round().astype(np.uint8) for im in images]
    return shapes.score(images, caps), images


def grid_png(out: Path, pipe_dir: Path, device: str, steps: int, guidance: float, seed: int) -> None:
    from diffusers import StableDiffusionPipeline
    from PIL import Image

    pipe = StableDiffusionPipeline.from_pretrained(pipe_dir).to(device)
    pipe.set_progress_bar_config(disable=True)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    ims = pipe(GRID_PROMPTS, num_inference_steps=steps, guidance_scale=guidance, generator=gen,
               output_type="pil").images
    grid = Image.new("RGB", (4 * 64 * 2, 4 * 64 * 2), "white")
    for i, im in enumerate(ims):
        grid.paste(im.resize((128, 128), Image.NEAREST), ((i % 4) * 128, (i // 4) * 128))
    grid.save(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="folder to write the pipeline to")
    ap.add_argument("--grid", type=Path, help="sample-grid PNG (default: OUT/sample_grid.png)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pool", type=int, default=40_000, help="training images drawn once")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--vae-steps", type=int, default=100_000)
    ap.add_argument("--vae-seconds", type=float, default=60)
    ap.add_argument("--vae-batch", type=int, default=128)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument("--vae-kl", type=float, default=1e-4)
    ap.add_argument("--unet-steps", type=int, default=1_000_000)
    ap.add_argument("--unet-seconds", type=float, default=240)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--cond-drop", type=float, default=0.1)
    ap.add_argument("--noise-offset", type=float, default=0.05)
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--guidance", type=float, nargs="+", default=[3.0, 5.0, 7.5])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--eval-only", action="store_true", help="only score the folder at --out (no training)")
    args = ap.parse_args(argv)
    if args.eval_only:
        for g in args.guidance:
            rates, _ = evaluate(args.out, args.device, args.eval_steps, g, args.seed, shapes.scored_captions())
            print(f"scored prompts, guidance {g}, {args.eval_steps} steps: "
                  + ", ".join(f"{k} {v:.0%}" if k != "n" else f"n {int(v)}" for k, v in rates.items()), flush=True)
        return 0

    t_all = time.time()
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = args.device
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        log(f"device: {torch.cuda.get_device_name(0)}")
    else:
        log(f"device: cpu, {torch.get_num_threads()} threads")

    def autocast():
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")

    tok = build_tokenizer()
    text_encoder, vae, unet = build_models(len(tok), tok)
    n_params = {k: sum(p.numel() for p in m.parameters()) for k, m in
                (("text_encoder", text_encoder), ("vae", vae), ("unet", unet))}
    log(f"params: {n_params}")
    t0 = time.time()
    texts, images = make_pool(args.pool, args.seed, args.workers)
    log(f"pool: {len(texts)} images in {time.time() - t0:.1f} s")
    images_t = to_tensor(images)
    if device == "cuda":
        images_t = images_t.to(device)
    vae.to(device)
    vae_steps = train_vae(vae, images_t, args, device, autocast)
    latents = encode_all(vae, images_t, device)
    std = latents.std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    latents = latents / std
    log(f"latents: std {std:.4f} -> scaling_factor {1.0 / std:.4f}; mean {latents.mean().item():.3f}")
    with torch.no_grad():
        rec = vae.decode(latents[:256].to(device) * std).sample.float()
        rec_err = (rec - images_t[:256].to(device)).abs().mean().item() * 127.5
    log(f"vae mean abs reconstruction error: {rec_err:.2f} / 255")
    preview = fit_preview(vae, images_t, device)
    ids = tokenize(tok, texts)
    uncond = tokenize(tok, [""])[0]
    text_encoder.to(device)
    unet.to(device)
    ema_unet, ema_text, unet_steps = train_unet(unet, text_encoder, latents, ids, uncond, args, device, autocast)
    train_s = time.time() - t_all

    meta = {
        "demo": True,
        "name": "demo-shapes",
        "description": "Demo model trained in code on coloured shapes (circle, square, triangle; 8 colours).",
        "width": 64, "height": 64, "default_steps": args.eval_steps, "default_guidance": args.guidance[0],
        "preview_rgb": preview,
        "training": {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "seconds": round(train_s),
                     "vae_steps": vae_steps, "unet_steps": unet_steps, "batch": args.batch, "seed": args.seed,
                     "params": n_params},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_pipeline(args.out, vae, ema_text, tok, ema_unet, meta)
    log(f"saved {args.out} ({sum(f.stat().st_size for f in args.out.rglob('*') if f.is_file()) / 1e6:.1f} MB)")

    best = None
    for g in args.guidance:
        rates, _ = evaluate(args.out, device, args.eval_steps, g, args.seed, shapes.tuning_captions())
        log(f"tuning prompt following (guidance {g}, {args.eval_steps} steps): "
            + ", ".join(f"{k} {v:.0%}" if k != "n" else f"n {int(v)}" for k, v in rates.items()))
        if best is None or rates["colour_and_shape"] > best[1]["colour_and_shape"]:
            best = (g, rates)
    meta["default_guidance"] = best[0]
    scored, _ = evaluate(args.out, device, args.eval_steps, best[0], args.seed, shapes.scored_captions())
    log(f"scored prompts at guidance {best[0]}: {scored}")
    meta["eval"] = {"guidance": best[0], "steps": args.eval_steps, "prompts": "shapes.scored_captions",
                    **{k: round(v, 3) for k, v in scored.items()}}
    (args.out / "playground.json").write_text(json.dumps(meta, indent=2))
    grid = args.grid or args.out / "sample_grid.png"
    grid_png(grid, args.out, device, args.eval_steps, best[0], args.seed)
    log(f"best guidance {best[0]} (on the tuning prompts); grid {grid}; total {time.time() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
