"""Bring your own model: is an uploaded file a safetensors LoRA, embedding, hypernetwork or checkpoint for this base?

Pure and cheap (no torch): only the safetensors header is read (8 bytes of length, then JSON naming every tensor's
dtype, shape and byte range), never the weights, never a pickle. The upload route calls `check_model_file` on the
first bytes of an upload (`header_bytes_needed` says how many) before storing it; a failure is a 422 with the
reason. The header must describe the file exactly as the safetensors loader demands: each tensor's bytes are its
shape times its dtype's size, and the tensors tile the data with no gap, overlap or trailing bytes.

`kohya_rewrite` gives a diffusers-layout LoRA's file in kohya's key layout without touching its weights: a new
header over the same data, plus one `alpha` scalar per module appended (the download's `?format=kohya`).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass

MAX_HEADER = 16 * 2**20
MAX_SIZE = {"lora": 1 * 2**30, "ti": 16 * 2**20, "hyper": 1 * 2**30, "ckp": 16 * 2**30}
CONTEXT_WIDTH = {"SD1.5": 768, "SD2": 1024}  # the text encoder's width: cross-attention keys and embeddings
_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4,
           "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}
Header = dict[str, dict[str, object]]


class InvalidModelFile(ValueError):
    """The upload is not what it claims to be; the message says why."""


@dataclass(frozen=True)
class ModelFile:
    model_type: str
    layout: str  # diffusers, kohya, a1111, original
    tensors: int


def file_url(model_id: int, model_path: str | None) -> str | None:
    """A model's `model_path` as the API shows it: where its file downloads (query/routes/model_files.py)."""
    return f"/api/models/{model_id}/file" if model_path else None


def header_bytes_needed(prefix: bytes) -> int:
    """How many leading bytes `check_model_file` needs, from the first 8."""
    if len(prefix) < 8:
        raise InvalidModelFile("not a safetensors file (shorter than its header length)")
    (length,) = struct.unpack("<Q", prefix[:8])
    if length > MAX_HEADER:
        raise InvalidModelFile("not a safetensors file (header length out of range)")
    return 8 + int(length)


def read_header(head: bytes, file_size: int) -> Header:
    """The tensors' entries (without `__metadata__`), checked against the file's size."""
    needed = header_bytes_needed(head)
    if len(head) < needed or needed > file_size:
        raise InvalidModelFile("not a safetensors file (truncated header)")
    try:
        header = json.loads(head[8:needed])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InvalidModelFile("not a safetensors file (its header is not JSON)") from error
    if not isinstance(header, dict):
        raise InvalidModelFile("not a safetensors file (its header is not an object)")
    header.pop("__metadata__", None)
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
            raise InvalidModelFile(f"tensor {name!r}: unknown dtype")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
            raise InvalidModelFile(f"tensor {name!r}: bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
                and 0 <= offsets[0] <= offsets[1] <= file_size - needed):
            raise InvalidModelFile(f"tensor {name!r}: its bytes lie outside the file")
        if math.prod(shape) * _DTYPES[str(entry["dtype"])] != offsets[1] - offsets[0]:
            raise InvalidModelFile(f"tensor {name!r}: its shape {shape} does not match its {offsets[1] - offsets[0]} "
                                   "bytes")
        spans.append((offsets[0], offsets[1]))
    if not header:
        raise InvalidModelFile("the file holds no tensors")
    end = 0
    for start, stop in sorted(spans):
        if start != end:
            raise InvalidModelFile("not a safetensors file (its tensors overlap or leave gaps)")
        end = stop
    if end != file_size - needed:
        raise InvalidModelFile("not a safetensors file (its size is not what its header says: truncated or padded)")
    return header


def _shape(header: Mapping[str, Mapping[str, object]], name: str) -> list[int]:
    shape = header[name]["shape"]
    assert isinstance(shape, list)
    return shape


def _lora(header: Mapping[str, Mapping[str, object]], width: int) -> str:
    names = list(header)
    if all(n.startswith(("lora_unet_", "lora_te_", "lora_te1_")) for n in names):
        layout, context = "kohya", [n for n in names if "attn2_to_k" in n and n.endswith("lora_down.weight")]
    elif all(n.startswith(("unet.", "text_encoder.")) and ".lora" in n for n in names):
        layout = "diffusers"
        context = [n for n in names if "attn2.to_k" in n and n.endswith(("lora_A.weight", "lora.down.weight"))]
    else:
        raise InvalidModelFile("not a LoRA: keys are neither diffusers' (unet.*.lora_A/B) nor kohya's (lora_unet_*)")
    for name in context:
        if _shape(header, name)[-1] != width:
            raise InvalidModelFile(f"LoRA made for another base: {name} reads width {_shape(header, name)[-1]}, "
                                   f"this base's text is {width} wide")
    return layout


def _ti(header: Mapping[str, Mapping[str, object]], width: int) -> str:
    if len(header) != 1:
        raise InvalidModelFile(f"not a textual inversion for this base: {len(header)} tensors (one expected; "
                               "SDXL embeddings have two)")
    [(name, _entry)] = header.items()
    shape = _shape(header, name)
    if len(shape) not in (1, 2) or shape[-1] != width or (len(shape) == 2 and not 1 <= shape[0] <= 75):
        raise InvalidModelFile(f"embedding {name!r} has shape {shape}: this base wants [vectors, {width}]")
    return "a1111"


def _hyper(header: Mapping[str, Mapping[str, object]], width: int) -> str:
    for name in header:
        parts = name.split(".")
        if len(parts) != 5 or not parts[0].isdigit() or parts[1] not in ("0", "1") or parts[2] != "linear":
            raise InvalidModelFile(f"not a hypernetwork: key {name!r} is not <width>.<0|1>.linear.<n>.<weight|bias>")
    if not any(name.startswith(f"{width}.") for name in header):
        raise InvalidModelFile(f"hypernetwork for another base: no module for this base's text width {width}")
    return "a1111"


def _ckp(header: Mapping[str, Mapping[str, object]], width: int) -> str:
    for prefix in ("model.diffusion_model.", "first_stage_model.", "cond_stage_model."):
        if not any(name.startswith(prefix) for name in header):
            raise InvalidModelFile(f"not a full checkpoint in the original SD layout: no {prefix}* tensors")
    probe = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    if probe in header and _shape(header, probe)[-1] != width:
        raise InvalidModelFile(f"checkpoint of another base: cross-attention reads width {_shape(header, probe)[-1]}, "
                               f"this base's text is {width} wide")
    return "original"


_CHECKS = {"lora": _lora, "ti": _ti, "hyper": _hyper, "ckp": _ckp}


def check_model_file(head: bytes, file_size: int, model_type: str, base_model: str) -> ModelFile:
    """`head` is at least the file's first `header_bytes_needed` bytes; `file_size` its whole size."""
    if model_type not in _CHECKS:
        raise InvalidModelFile(f"unknown model type {model_type!r}")
    if base_model not in CONTEXT_WIDTH:
        raise InvalidModelFile(f"unknown base model {base_model!r} (known: {', '.join(CONTEXT_WIDTH)})")
    if file_size > MAX_SIZE[model_type]:
        raise InvalidModelFile(f"a {model_type} file may be at most {MAX_SIZE[model_type] // 2**20} MiB")
    header = read_header(head, file_size)
    layout = _CHECKS[model_type](header, CONTEXT_WIDTH[base_model])
    return ModelFile(model_type, layout, len(header))


def kohya_rewrite(header: Mapping[str, Mapping[str, object]]) -> tuple[bytes, bytes]:
    """A diffusers-layout LoRA (`unet.<module>.lora_A/lora_B.weight`, `text_encoder.` too) as kohya's: the new
    header (length prefix included) to send before the file's unchanged data, and the bytes to send after it (one
    float32 `alpha` = rank per module, as our trainer folds alpha/rank into the up matrices). InvalidModelFile for
    any other layout."""
    entries: dict[str, object] = {}
    alphas: list[tuple[str, float]] = []
    end = 0
    for name, entry in header.items():
        prefix = next((p for p in ("unet.", "text_encoder.") if name.startswith(p)), None)
        if prefix is None or not name.endswith((".lora_A.weight", ".lora_B.weight")):
            raise InvalidModelFile(f"only a diffusers LoRA (unet.*.lora_A/B.weight) converts to kohya's; {name!r}")
        module, kind = name[len(prefix):-len(".weight")].rsplit(".", 1)
        kohya = ("lora_unet_" if prefix == "unet." else "lora_te_") + module.replace(".", "_")
        entries[f"{kohya}.lora_down.weight" if kind == "lora_A" else f"{kohya}.lora_up.weight"] = dict(entry)
        if kind == "lora_A":
            shape = entry["shape"]
            assert isinstance(shape, list)
            alphas.append((f"{kohya}.alpha", float(shape[0])))
        offsets = entry["data_offsets"]
        assert isinstance(offsets, list)
        end = max(end, int(offsets[1]))
    trailer = b""
    for name, value in alphas:
        entries[name] = {"dtype": "F32", "shape": [], "data_offsets": [end + len(trailer), end + len(trailer) + 4]}
        trailer += struct.pack("<f", value)
    entries["__metadata__"] = {"format": "pt"}
    body = json.dumps(entries, separators=(",", ":")).encode()
    body += b" " * (-len(body) % 8)  # safetensors aligns the data to 8 bytes
    return struct.pack("<Q", len(body)) + body, trailer
