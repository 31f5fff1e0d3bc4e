"""The GPU work of image generation as a library: base pipelines cached, requests batched, images out.

No queue, no database: the runner's loop hands `PipelinePool.generate` a batch of compatible requests and reports
what comes back. Hub access is switched off before diffusers is first imported: bases are local paths only.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gpu_runner.pipeline.pool import PipelinePool
from gpu_runner.pipeline.requests import (
    AdapterRef,
    Canceled,
    GenerationRequest,
    GenerationResult,
    StepReport,
    Unsupported,
)

__all__ = [
    "AdapterRef",
    "Canceled",
    "GenerationRequest",
    "GenerationResult",
    "PipelinePool",
    "StepReport",
    "Unsupported",
]
