"""A tiny random CLIP model saved locally, as `save_pretrained` writes a real one (config.json, weights,
preprocessor_config.json): what AIDRAW_CLIP_MODEL_PATH names in the tests (no CLIP weights can be had here)."""

from __future__ import annotations

from pathlib import Path

PROJECTION_DIM = 16


def save_tiny_clip(folder: Path, seed: int = 0) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tower = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
    config = CLIPConfig(text_config={**tower, "vocab_size": 99, "max_position_embeddings": 32,
                                         "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
                        vision_config={**tower, "image_size": 32, "patch_size": 4},
                        projection_dim=PROJECTION_DIM)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder
