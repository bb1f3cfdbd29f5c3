"""MobileSAM (``SAM_MODEL_TYPE=vit_t``): SAM with a TinyViT image encoder, for CPUs.

MobileSAM (Zhang et al., 2023, Apache-2.0) distils SAM's ViT-H image encoder into a 5.7 M-parameter
TinyViT and keeps SAM's prompt encoder and mask decoder unchanged; its reference predictor is
segment_anything's ``SamPredictor``. The model built here is therefore a ``segment_anything`` ``Sam``
whose image encoder is Ultralytics' TinyViT (``ultralytics.models.sam``, the maintained package that
carries MobileSAM) with MobileSAM's hyper-parameters, and whose prompt encoder and mask decoder are
segment_anything's: embeddings and clicks go through the same :class:`Segmenter` as vit_b, and the
parameter names are MobileSAM's, so its checkpoint ``mobile_sam.pt`` loads as it is.

TinyViT's attention layers cache their position biases when switched to eval mode: call ``eval()``
after loading weights (:func:`load_sam` does).
"""

from __future__ import annotations

from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

IMAGE_SIZE = 1024
EMBED_DIM = 256
GRID = IMAGE_SIZE // 16  # the embedding is 256 × 64 × 64, as with SAM's ViT encoders


def build_mobile_sam(checkpoint: str | None = None) -> Sam:
    """MobileSAM's architecture with untrained weights (the signature of segment_anything's builders;
    weights are loaded by the caller)."""
    if checkpoint is not None:
        raise ValueError("build_mobile_sam builds the architecture only; load the checkpoint into it")
    from ultralytics.models.sam.modules.tiny_encoder import TinyViT  # slow import: only when vit_t is used

    encoder = TinyViT(
        img_size=IMAGE_SIZE,
        num_classes=1000,  # MobileSAM's checkpoint keeps TinyViT's (unused) classifier head
        embed_dims=(64, 128, 160, 320),
        depths=(2, 2, 6, 2),
        num_heads=(2, 4, 5, 10),
        window_sizes=(7, 7, 14, 7),
        mlp_ratio=4.0,
        drop_rate=0.0,
        drop_path_rate=0.0,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
        layer_lr_decay=0.8,
    )
    return Sam(
        image_encoder=encoder,  # type: ignore[arg-type]  # any module mapping (B, 3, 1024, 1024) to the embedding
        prompt_encoder=PromptEncoder(
            embed_dim=EMBED_DIM,
            image_embedding_size=(GRID, GRID),
            input_image_size=(IMAGE_SIZE, IMAGE_SIZE),
            mask_in_chans=16,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=EMBED_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=EMBED_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=256,
        ),
    ).eval()
