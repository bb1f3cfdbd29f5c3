"""A tiny SAM 2 trained here from random weights so that it tracks: synthetic videos of a moving shape.

The model is built and trained through the code the video predictor runs (``build_sam2_video_predictor`` and
``SAM2Base.track_step``, in eval mode, memories rounded to bfloat16 as the predictor stores them), so the
checkpoint works through the public ``SAM2VideoPredictor`` API and the backend. About 3 minutes on one CPU thread,
deterministic: 420 steps of 6 clips of 5 frames at a 128-pixel input (the video predictor runs at any input
size; ``SAM2ImagePredictor`` assumes 1024).

What it learns is to follow the one object of a video from the box on its first frame: on 40-frame videos of
a square or disc moving over a textured background it keeps mask IoU 0.82-0.92 (lowest frame of three videos
it never saw). With a second object in the video it segments both: learning to use the box prompt from scratch
needs far more training than a test can spend, so the training clips hold one object (``MAX_DISTRACTORS``).
"""

from __future__ import annotations

import colorsys
import contextlib
import pathlib
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

IMAGE_SIZE = 128  # model input resolution; backbone stride 16 gives 8x8 top-level features
VIDEO_HW = (120, 160)  # (height, width) of the synthetic videos
IMG_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMG_STD = np.array([0.229, 0.224, 0.225], np.float32)

# Training recipe (about 3 minutes on one CPU thread).
TRAIN_STEPS = 420
BATCH = 6  # clips per step
CLIP_LEN = 5  # prompt frame + 4 tracked frames: fills all num_maskmem=4 memory slots
LR = 2e-3
BCE_W = 3.0  # BCE weight relative to dice
FRAME0_W = 2.0  # extra weight on the prompted frame
MAX_DISTRACTORS = 0  # with distractors the box prompt is not learned in the budget (module docstring)

# ---------------------------------------------------------------------------------------
# Synthetic data
# ---------------------------------------------------------------------------------------


def _saturated_colour(hue: float, rng: np.random.Generator) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0))
    return np.array([r, g, b]) * 255.0


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Muted colour gradient with a few static low-contrast blobs (float32 HxWx3)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
    c0, c1 = rng.uniform(60, 190, size=(2, 3))
    bg = c0 + ramp[..., None] * (c1 - c0)
    for _ in range(rng.integers(4, 9)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(5, 25, size=2)
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
        bg[blob] = bg[blob] * 0.5 + rng.uniform(50, 200, size=3) * 0.5
    return bg.astype(np.float32)


def _shape_mask(kind: str, centre: np.ndarray, size: float, grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    yy, xx = grid
    dy, dx, r = yy + 0.5 - centre[0], xx + 0.5 - centre[1], size / 2.0
    if kind == "square":
        return (np.abs(dy) <= r) & (np.abs(dx) <= r)
    return dy * dy + dx * dx <= r * r  # disc


def _render(
    rng: np.random.Generator, num_frames: int, height: int, width: int, num_distractors: int
) -> tuple[np.ndarray, np.ndarray]:
    """Render a clip; returns frames (T,H,W,3) uint8 and target masks (T,H,W) bool.

    Object 0 is the target, the others are distractors of clearly different hues.
    Shapes, colours, sizes and velocities are random; objects bounce off the borders
    and off each other, so they never overlap.
    """
    n_obj = 1 + num_distractors
    hue0, spacing = rng.uniform(), 1.0 / max(n_obj, 3)
    sizes = rng.uniform(28, 40, size=n_obj)
    kinds = rng.choice(["square", "disc"], size=n_obj)
    colours = [_saturated_colour(hue0 + i * spacing + rng.uniform(-0.05, 0.05), rng) for i in range(n_obj)]
    angles = rng.uniform(0, 2 * np.pi, size=n_obj)
    vel = rng.uniform(1.5, 3.5, size=(n_obj, 1)) * np.stack([np.sin(angles), np.cos(angles)], 1)
    lo = sizes[:, None] / 2
    hi = np.array([height, width])[None] - sizes[:, None] / 2

    def colliding(p: np.ndarray) -> np.ndarray:
        """Boolean per object: overlaps (with a 4 px margin) any other object."""
        gap = (sizes[:, None] + sizes[None, :]) / 2 + 4
        close = np.all(np.abs(p[:, None] - p[None, :]) < gap[..., None], axis=-1)
        np.fill_diagonal(close, False)
        return close.any(1)

    pos = rng.uniform(lo, hi)
    while colliding(pos).any():  # non-overlapping initial positions
        pos = rng.uniform(lo, hi)

    grid = np.mgrid[0:height, 0:width]
    bg = _background(rng, height, width)
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    masks = np.empty((num_frames, height, width), bool)
    for t in range(num_frames):
        img = bg + rng.normal(0.0, 4.0, size=bg.shape)
        for i in range(n_obj):
            m = _shape_mask(kinds[i], pos[i], sizes[i], grid)
            img[m] = colours[i]
            if i == 0:
                masks[t] = m
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
        # advance; bounce off the borders, then undo moves (and reverse) on collisions
        new = pos + vel
        out = (new < lo) | (new > hi)
        vel[out] = -vel[out]
        new = np.clip(new, lo, hi)
        while (hit := colliding(new) & np.any(new != pos, axis=1)).any():
            new[hit] = pos[hit]
            vel[hit] = -vel[hit]
        pos = new
    return frames, masks


def synthetic_video(
    seed: int,
    num_frames: int = 40,
    height: int = VIDEO_HW[0],
    width: int = VIDEO_HW[1],
    distractor: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A moving-shape video: frames (T,H,W,3) uint8 RGB and the target's masks (T,H,W) bool.

    The target is a random coloured square or disc moving across a textured background;
    with ``distractor=True`` a second shape of a different hue moves around as well.
    """
    return _render(np.random.default_rng(seed), num_frames, height, width, int(distractor))


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight [x0, y0, x1, y1] box (inclusive pixel coordinates) of a boolean mask."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


# ---------------------------------------------------------------------------------------
# Model config
# ---------------------------------------------------------------------------------------

_CONFIG_TEMPLATE = """\
# @package _global_
# Tiny SAM 2 for tests (trained from scratch on synthetic clips by sam2_tracking.py).
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk:
      _target_: sam2.modeling.backbones.hieradet.Hiera
      embed_dim: {embed_dim}
      num_heads: 1
      stages: [1, 1, 2, 1]
      global_att_blocks: [3]
      window_spec: [8, 4, 8, 4]
      window_pos_embed_bkg_spatial_size: [8, 8]
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: {d_model}
        normalize: true
        scale: null
        temperature: 10000
      d_model: {d_model}
      backbone_channel_list: [{c3}, {c2}, {c1}, {embed_dim}]
      fpn_top_down_levels: [2, 3]
      fpn_interp_model: nearest
  memory_attention:
    _target_: sam2.modeling.memory_attention.MemoryAttention
    d_model: {d_model}
    pos_enc_at_input: true
    layer:
      _target_: sam2.modeling.memory_attention.MemoryAttentionLayer
      activation: relu
      dim_feedforward: {ffn}
      dropout: 0.0
      pos_enc_at_attn: false
      self_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [{feat}, {feat}]
        embedding_dim: {d_model}
        num_heads: 1
        downsample_rate: 1
        dropout: 0.0
      d_model: {d_model}
      pos_enc_at_cross_attn_keys: true
      pos_enc_at_cross_attn_queries: false
      cross_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [{feat}, {feat}]
        rope_k_repeat: true
        embedding_dim: {d_model}
        num_heads: 1
        downsample_rate: 1
        dropout: 0.0
        kv_in_dim: {mem_dim}
    num_layers: {mem_layers}
  memory_encoder:
    _target_: sam2.modeling.memory_encoder.MemoryEncoder
    out_dim: {mem_dim}
    in_dim: {d_model}
    position_encoding:
      _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
      num_pos_feats: {mem_dim}
      normalize: true
      scale: null
      temperature: 10000
    mask_downsampler:
      _target_: sam2.modeling.memory_encoder.MaskDownSampler
      embed_dim: {d_model}
      kernel_size: 3
      stride: 2
      padding: 1
    fuser:
      _target_: sam2.modeling.memory_encoder.Fuser
      layer:
        _target_: sam2.modeling.memory_encoder.CXBlock
        dim: {d_model}
        kernel_size: 7
        padding: 3
        layer_scale_init_value: 1e-6
        use_dwconv: true
      num_layers: 1
  num_maskmem: {num_maskmem}
  image_size: {image_size}
  sigmoid_scale_for_mem_enc: 20.0
  sigmoid_bias_for_mem_enc: -10.0
  use_mask_input_as_output_without_sam: true
  directly_add_no_mem_embed: true
  no_obj_embed_spatial: true
  use_high_res_features_in_sam: true
  multimask_output_in_sam: false
  iou_prediction_use_sigmoid: true
  use_obj_ptrs_in_encoder: true
  max_obj_ptrs_in_encoder: {max_ptrs}
  add_tpos_enc_to_obj_ptrs: false
  only_obj_ptrs_in_the_past_for_eval: true
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  multimask_output_for_tracking: false
  use_mlp_for_obj_ptr_proj: true
  compile_image_encoder: false
"""


def write_config(path: pathlib.Path, embed_dim: int = 8, d_model: int = 64, mem_dim: int = 16) -> None:
    """Write the tiny SAM 2 Hydra config (image_size=IMAGE_SIZE) to ``path``."""
    path.write_text(
        _CONFIG_TEMPLATE.format(
            embed_dim=embed_dim,
            c1=embed_dim * 2,
            c2=embed_dim * 4,
            c3=embed_dim * 8,
            d_model=d_model,
            ffn=2 * d_model,
            mem_dim=mem_dim,
            mem_layers=1,
            feat=IMAGE_SIZE // 16,
            image_size=IMAGE_SIZE,
            max_ptrs=4,
            num_maskmem=4,
        )
    )


def build_video_predictor(yaml_path: pathlib.Path, ckpt_path: pathlib.Path | None = None) -> torch.nn.Module:
    """A SAM2VideoPredictor from a config file outside sam2's own config module, as the backend builds it."""
    from sam2.build_sam import build_sam2_video_predictor

    from tests.backends.sam2_support import configs_in

    with configs_in(yaml_path.parent.resolve()):
        return build_sam2_video_predictor(yaml_path.stem, None if ckpt_path is None else str(ckpt_path), device="cpu")


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------


def _preprocess(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (N,H,W,3) -> normalised (N,3,S,S) exactly like sam2's JPEG loader."""
    out = np.stack(
        [np.asarray(Image.fromarray(f).resize((IMAGE_SIZE, IMAGE_SIZE))) for f in frames]
    ).astype(np.float32) / 255.0
    out = (out - IMG_MEAN) / IMG_STD
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


@contextlib.contextmanager
def _capture_decoder_outputs(model) -> Iterator[list]:
    """Record every raw ``MaskDecoder.predict_masks`` output (all 4 mask tokens)."""
    decoder = model.sam_mask_decoder
    shadowed = decoder.__dict__.get("predict_masks")  # set when nested
    original = decoder.predict_masks
    records: list = []

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        records.append(out)
        return out

    decoder.predict_masks = recording
    try:
        yield records
    finally:
        if shadowed is None:
            del decoder.predict_masks
        else:
            decoder.predict_masks = shadowed


def _mask_losses(logits: torch.Tensor, iou_pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """BCE + dice on each mask token (logits B,M,H,W vs gt B,H,W) plus IoU-head MSE."""
    gt = gt[:, None].expand_as(logits)
    bce = F.binary_cross_entropy_with_logits(logits, gt, reduction="none").mean((-1, -2))
    prob = logits.sigmoid()
    inter = (prob * gt).sum((-1, -2))
    dice = 1 - (2 * inter + 1) / (prob.sum((-1, -2)) + gt.sum((-1, -2)) + 1)
    with torch.no_grad():
        hard = logits > 0
        true_iou = (hard & (gt > 0.5)).sum((-1, -2)) / ((hard | (gt > 0.5)).sum((-1, -2)).clamp(min=1))
    iou_loss = F.mse_loss(iou_pred, true_iou.float(), reduction="none")
    weights = torch.tensor([1.0] + [0.5] * (logits.shape[1] - 1))  # token 0 is the main output
    return ((BCE_W * bce + dice + iou_loss) * weights).sum(1).mean()


def _clip_loss(model, frames: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Prompt frame 0 with a (jittered) GT box, track the rest, supervise every frame.

    ``frames``: (B,T,H,W,3) uint8, ``masks``: (B,T,H,W) bool.
    """
    B, T, H, W = masks.shape
    images = _preprocess(frames.transpose(1, 0, 2, 3, 4).reshape(T * B, H, W, 3))
    backbone_out = model.forward_image(images)
    _, vision_feats, vision_pos, feat_sizes = model._prepare_backbone_features(backbone_out)

    boxes = np.stack([mask_to_box(m) for m in masks[:, 0]])
    boxes += rng.uniform(-1.5, 1.5, size=boxes.shape)
    coords = torch.from_numpy(boxes.reshape(B, 2, 2) / np.array([W, H], np.float32) * IMAGE_SIZE).float()
    box_prompt = {"point_coords": coords, "point_labels": torch.tensor([[2, 3]] * B, dtype=torch.int32)}

    gt = torch.from_numpy(masks).float()
    output_dict: dict = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
    loss = torch.zeros(())
    with _capture_decoder_outputs(model) as records:
        for t in range(T):
            sl = slice(t * B, (t + 1) * B)
            out = model.track_step(
                frame_idx=t,
                is_init_cond_frame=t == 0,
                current_vision_feats=[x[:, sl] for x in vision_feats],
                current_vision_pos_embeds=[x[:, sl] for x in vision_pos],
                feat_sizes=feat_sizes,
                point_inputs=box_prompt if t == 0 else None,
                mask_inputs=None,
                output_dict=output_dict,
                num_frames=max(T, 16),
            )
            # the predictor stores memories in bfloat16; train under the same rounding
            out["maskmem_features"] = out["maskmem_features"].to(torch.bfloat16)
            output_dict["cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"][t] = out

            low_res, iou_pred, _, obj_logits = records[-1]
            video_res = F.interpolate(low_res, size=(H, W), mode="bilinear", align_corners=False)
            frame_w = FRAME0_W if t == 0 else 1.0
            loss = loss + frame_w * _mask_losses(video_res, iou_pred, gt[:, t])
            loss = loss + F.binary_cross_entropy_with_logits(obj_logits, torch.ones_like(obj_logits))
    return loss / T


def train_tracking_sam2(
    folder: pathlib.Path, seed: int = 0, verbose: bool = False
) -> tuple[pathlib.Path, pathlib.Path]:
    """Build a tiny SAM 2 (a Hydra YAML config file for sam2.modeling.sam2_base.SAM2Base) and
    train it from random weights on synthetic moving-shape clips so that it tracks; write
    <folder>/<name>.yaml and <folder>/<name>.pt (torch.save({"model": state_dict})) and
    return their paths."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = "sam2_tiny_tracking"
    yaml_path, ckpt_path = folder / f"{name}.yaml", folder / f"{name}.pt"
    write_config(yaml_path)

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # Built exactly as the backend builds it (same class and post-processing overrides);
    # trained in eval mode, which is differentiable and matches inference behaviour
    # (binarised prompt-frame memory, dynamic multimask fallback). Dropout is 0.
    model = build_video_predictor(yaml_path)
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=TRAIN_STEPS, pct_start=0.1)
    t0 = time.time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the recipe's figures are one thread's: the same sums in the same order
    try:
        _train(model, params, opt, sched, rng, t0, verbose)
    finally:
        torch.set_num_threads(threads)
    torch.save({"model": model.state_dict()}, ckpt_path)
    return yaml_path, ckpt_path


def _train(model: torch.nn.Module, params: list[torch.nn.Parameter], opt: torch.optim.Optimizer,
           sched: torch.optim.lr_scheduler.LRScheduler, rng: np.random.Generator, t0: float, verbose: bool) -> None:
    for step in range(TRAIN_STEPS):
        clips = [
            _render(rng, CLIP_LEN, *VIDEO_HW, int(rng.integers(0, MAX_DISTRACTORS + 1)))
            for _ in range(BATCH)
        ]
        loss = _clip_loss(model, np.stack([c[0] for c in clips]), np.stack([c[1] for c in clips]), rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if verbose and (step % 50 == 0 or step == TRAIN_STEPS - 1):
            print(f"step {step:4d} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)


