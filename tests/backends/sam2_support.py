"""A tiny SAM 2 with random weights (its Hydra config written next to its checkpoint), loaded through the
backend's real path (``SAM2_CONFIG`` a YAML file, ``SAM2_CHECKPOINT`` a ``.pt``), and synthetic videos.

The tiny network keeps the official models' input size (1024 px: ``SAM2ImagePredictor`` assumes it) and
shape of parts, at a fraction of their width: a 5-block Hiera of width 8, hidden width 32, memory width 16.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from labelzoo import Settings
from labelzoo.registry import load_backend
from tests.backends.sam_support import loaded_backends

REPO = Path(__file__).resolve().parents[2]
SAM2_FOLDER = REPO / "backends" / "sam2"

TINY_CONFIG = """\
# @package _global_
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk: {_target_: sam2.modeling.backbones.hieradet.Hiera, embed_dim: 8, num_heads: 1, stages: [1, 1, 2, 1],
            global_att_blocks: [3], window_pos_embed_bkg_spatial_size: [7, 7]}
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding: {_target_: sam2.modeling.position_encoding.PositionEmbeddingSine, num_pos_feats: 32,
                          normalize: true, scale: null, temperature: 10000}
      d_model: 32
      backbone_channel_list: [64, 32, 16, 8]
      fpn_top_down_levels: [2, 3]
      fpn_interp_model: nearest
  memory_attention:
    _target_: sam2.modeling.memory_attention.MemoryAttention
    d_model: 32
    pos_enc_at_input: true
    num_layers: 1
    layer:
      _target_: sam2.modeling.memory_attention.MemoryAttentionLayer
      activation: relu
      dim_feedforward: 64
      dropout: 0.1
      pos_enc_at_attn: false
      d_model: 32
      pos_enc_at_cross_attn_keys: true
      pos_enc_at_cross_attn_queries: false
      self_attention: {_target_: sam2.modeling.sam.transformer.RoPEAttention, rope_theta: 10000.0,
                       feat_sizes: [64, 64], embedding_dim: 32, num_heads: 1, downsample_rate: 1, dropout: 0.1}
      cross_attention: {_target_: sam2.modeling.sam.transformer.RoPEAttention, rope_theta: 10000.0,
                        feat_sizes: [64, 64], rope_k_repeat: true, embedding_dim: 32, num_heads: 1,
                        downsample_rate: 1, dropout: 0.1, kv_in_dim: 16}
  memory_encoder:
    _target_: sam2.modeling.memory_encoder.MemoryEncoder
    out_dim: 16
    in_dim: 32
    position_encoding: {_target_: sam2.modeling.position_encoding.PositionEmbeddingSine, num_pos_feats: 16,
                        normalize: true, scale: null, temperature: 10000}
    mask_downsampler: {_target_: sam2.modeling.memory_encoder.MaskDownSampler, embed_dim: 32, kernel_size: 3,
                       stride: 2, padding: 1}
    fuser:
      _target_: sam2.modeling.memory_encoder.Fuser
      num_layers: 1
      layer: {_target_: sam2.modeling.memory_encoder.CXBlock, dim: 32, kernel_size: 7, padding: 3,
              layer_scale_init_value: 1e-6, use_dwconv: true}
  num_maskmem: 7
  image_size: 1024
  sigmoid_scale_for_mem_enc: 20.0
  sigmoid_bias_for_mem_enc: -10.0
  use_mask_input_as_output_without_sam: true
  directly_add_no_mem_embed: true
  no_obj_embed_spatial: true
  use_high_res_features_in_sam: true
  multimask_output_in_sam: true
  iou_prediction_use_sigmoid: true
  use_obj_ptrs_in_encoder: true
  add_tpos_enc_to_obj_ptrs: true
  proj_tpos_enc_in_obj_ptrs: true
  use_signed_tpos_enc_to_obj_ptrs: true
  only_obj_ptrs_in_the_past_for_eval: true
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  multimask_output_for_tracking: true
  use_multimask_token_for_obj_ptr: true
  multimask_min_pt_num: 0
  multimask_max_pt_num: 1
  use_mlp_for_obj_ptr_proj: true
  compile_image_encoder: false
"""


def sam2_module(name: str) -> Any:
    """A module of the SAM 2 backend folder, imported as the server imports it (``labelzoo_backends.sam2``)."""
    import importlib

    load_backend(str(SAM2_FOLDER))
    return importlib.import_module(f"labelzoo_backends.sam2.{name}")


@pytest.fixture(name="tiny_sam2", scope="session")
def tiny_sam2_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config file, checkpoint file) of the tiny SAM 2, random weights of a seed whose masks are partial, on
    images and on :func:`moving_square` (most seeds' video masks are empty)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    folder = tmp_path_factory.mktemp("sam2")
    config = folder / "tiny_sam2.yaml"
    config.write_text(TINY_CONFIG)
    torch.manual_seed(5)
    model = instantiate(OmegaConf.create(TINY_CONFIG).model, _recursive_=True)
    checkpoint = folder / "tiny_sam2.pt"
    torch.save({"model": model.state_dict()}, checkpoint)
    return config, checkpoint


@contextmanager
def configs_in(folder: Path) -> Iterator[None]:
    """Hydra composing from ``folder`` (a config of one's own, as the sam2 docs have one do it), then from the
    package's own configs again, where importing sam2 points it."""
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(folder), version_base="1.2"):
            yield
    finally:
        GlobalHydra.instance().clear()
        initialize_config_module("sam2", version_base="1.2")


def image_reference(config: Path, checkpoint: Path) -> Callable[..., tuple[np.ndarray, float]]:
    """``predict(pixels, **prompt)``: ``SAM2ImagePredictor`` on ``build_sam2`` of the model, the library called
    directly; the best of its masks (by predicted IoU) and that IoU."""
    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    with configs_in(config.parent):
        model = build_sam2(config.stem, str(checkpoint), device="cpu")

    def predict(pixels: np.ndarray, **prompt: Any) -> tuple[np.ndarray, float]:
        predictor = SAM2ImagePredictor(model)
        predictor.set_image(pixels)
        masks, scores, _ = predictor.predict(**prompt)
        best = int(np.argmax(scores))
        return masks[best] > 0, float(scores[best])

    return predict


def video_boxes(config: Path, checkpoint: Path) -> Callable[..., dict[int, tuple | None]]:
    """``run(frames, prompts, folder)``: ``build_sam2_video_predictor``'s predictor called directly on ``frames``
    (written into the new ``folder``), a box prompt of object 1 on each frame index of ``prompts`` (x0, y0, x1,
    y1); the pixel box around its mask on each frame from the first prompt on (None: empty)."""
    from PIL import Image
    from sam2.build_sam import build_sam2_video_predictor

    from labelzoo.results import mask_box

    with configs_in(config.parent):
        predictor = build_sam2_video_predictor(config.stem, str(checkpoint), device="cpu")

    def run(frames: list[np.ndarray], prompts: dict[int, list[float]], folder: Path) -> dict[int, tuple | None]:
        folder.mkdir()
        for i, pixels in enumerate(frames):
            Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", format="PNG")
        state = predictor.init_state(video_path=str(folder), offload_video_to_cpu=True)
        for index, box in prompts.items():
            predictor.add_new_points_or_box(state, frame_idx=index, obj_id=1, box=np.array(box, np.float32))
        return {i: mask_box((logits[0, 0] > 0).numpy()) for i, _, logits in predictor.propagate_in_video(state)}

    return run


@pytest.fixture(name="tracking_sam2", scope="session")
def tracking_sam2_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(config file, checkpoint file) of a tiny SAM 2 trained here to track (:mod:`tests.backends.sam2_tracking`,
    about 3 minutes)."""
    from tests.backends.sam2_tracking import train_tracking_sam2

    return train_tracking_sam2(tmp_path_factory.mktemp("sam2-tracking"))


def write_lossless_video(path: Path, frames: Sequence[np.ndarray], fps: float = 25.0) -> Path:
    """An FFV1 AVI of ``frames`` (RGB): decoded, its frames are these exactly."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), fps, (width, height))
    for pixels in frames:
        writer.write(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def sam2_settings(tmp_path: Path, **env: str) -> Settings:
    base = {"MODEL_DIR": str(tmp_path / "models"), "MEDIA_CACHE_DIR": str(tmp_path / "media"),
            "MEDIA_LOCAL_ROOTS": str(tmp_path), "DEVICE": "cpu"}  # fmt: skip
    return Settings.from_env({**base, **env})


@pytest.fixture(name="make_sam2")
def make_sam2_fixture(tmp_path: Path, tiny_sam2: tuple[Path, Path]) -> Iterator[Any]:
    """``make_sam2(**env)``: a loaded SAM 2 backend on the tiny model (env overrides the defaults)."""
    config, checkpoint = tiny_sam2

    def settings(**env: str) -> Settings:
        return sam2_settings(tmp_path, **{"SAM2_CONFIG": str(config), "SAM2_CHECKPOINT": str(checkpoint), **env})

    with loaded_backends(SAM2_FOLDER, settings) as make:
        yield make


def moving_square(frames: int = 12, size: tuple[int, int] = (160, 120), side: int = 30, step: int = 4,
                  seed: int = 0) -> tuple[list[np.ndarray], list[tuple[int, int, int, int]]]:  # fmt: skip
    """RGB frames of a bright square moving right over noise, and its (x, y, w, h) box on each frame."""
    rng = np.random.default_rng(seed)
    width, height = size
    out, boxes = [], []
    for i in range(frames):
        pixels = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        x, y = 10 + i * step, 40
        pixels[y : y + side, x : x + side] = (230, 200, 40)
        out.append(pixels)
        boxes.append((x, y, side, side))
    return out, boxes


def write_video(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """An MPEG-4 file of ``frames`` (RGB); read back, its frames differ a little from these (lossy)."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for pixels in frames:
        writer.write(cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def decoded_frames(path: Path) -> list[np.ndarray]:
    """Every frame of the video as OpenCV decodes it, RGB."""
    capture = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    return out


def track(keyframes: list[dict], *, region_id: str = "t1", label: str = "Player") -> dict:
    """A videorectangle track as the editor sends it; keyframes carry frame and x, y, width, height in percent."""
    sequence = [{"enabled": True, "rotation": 0, "time": k["frame"] / 25, **k} for k in keyframes]
    return {"id": region_id, "from_name": "box", "to_name": "video", "type": "videorectangle",
            "value": {"framesCount": 12, "duration": 12 / 25, "sequence": sequence, "labels": [label]}}  # fmt: skip
