"""Textual inversion: new tokens for the trigger word, and only their embedding rows train.

The trigger word becomes `num_vectors` new tokens (`word`, `word_1`, ...), each initialised to the mean embedding
of the tokens the word was split into before. Every caption says the trigger word (it is put first where a caption
lacks it), spelt as all its vectors. The embedding table trains as one tensor, and every other row is written back
from a copy after each step (AdamW's weight decay and shared caption tokens would move them otherwise). The artefact
is `{"emb_params": [num_vectors, width]}` in safetensors: A1111 loads it under the file's name,
`load_textual_inversion(file, token=word)` under the word.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from safetensors.torch import save as save_bytes

from gpu_runner.training.sd import BaseParts, SDTrainee, TrainingFailed, TrainingImage
from gpu_runner.training.spec import TrainSpec


def _with_trigger(caption: str, word: str, spelt: str) -> str:
    if word not in caption.split():
        caption = f"{word}, {caption}" if caption else word
    return " ".join(spelt if part == word else part for part in caption.split(" "))


class TiTrainee(SDTrainee):
    def __init__(self, spec: TrainSpec, parts: BaseParts, items: Sequence[TrainingImage],
                 device: str = "cpu") -> None:
        if not spec.trigger_words:
            raise TrainingFailed("a textual inversion needs a trigger word")
        word = spec.trigger_words[0]
        tokenizer, encoder = parts.tokenizer, parts.text_encoder
        tokens = [word] + [f"{word}_{i}" for i in range(1, spec.int("num_vectors"))]
        init_ids = tokenizer(word, add_special_tokens=False).input_ids
        if tokenizer.add_tokens(tokens) != len(tokens):
            raise TrainingFailed(f"the trigger word {word!r} is already a single token of this base; pick another")
        encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        self.ids = tokenizer.convert_tokens_to_ids(tokens)
        table = encoder.get_input_embeddings().weight
        with torch.no_grad():
            table[self.ids] = table[init_ids].mean(dim=0)
        self.original = table.detach().clone()
        table.requires_grad_(True)
        self.table = table
        spelt = " ".join(tokens)
        items = [TrainingImage(i.image, _with_trigger(i.caption, word, spelt), i.repeats) for i in items]
        super().__init__(spec, parts, items, device)
        self.original = self.original.to(self.device)

    def parameters(self) -> list[torch.nn.Parameter]:
        return [self.table]

    def loss(self, step: int, generator: torch.Generator) -> torch.Tensor:
        indices = self.batch(step, generator)
        hidden = self.encode_text([self.captions[i] for i in indices])
        return self.noise_loss(indices, hidden, generator)

    def after_step(self) -> None:
        keep = torch.ones(self.table.shape[0], dtype=torch.bool, device=self.table.device)
        keep[self.ids] = False
        with torch.no_grad():
            self.table[keep] = self.original[keep]

    def state(self) -> dict[str, torch.Tensor]:
        return {"rows": self.table.detach()[self.ids].cpu().clone()}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.table[self.ids] = state["rows"].to(self.table.device)

    def artefact(self) -> bytes:
        return save_bytes({"emb_params": self.state()["rows"].contiguous()}, metadata={"format": "pt"})
