"""Quality of `similar=`: recall@10 of same-theme neighbours on a labelled set, by prompt, by image, combined,
beside date order. Prints a table, asserts nothing.

    .venv/bin/python -m bench.similar_quality [--per-theme 6] [--weight 0.5]

The set is tests/themes.py: themes drawn in their own colours and shapes, each image with a prompt that shares
no content word with the other prompts of its theme. Embeddings are made by the real code (infra/embeddings.py:
the packaged sentence model; the upload path's descriptor of infra/media.py), and ranked exactly by the same
score the read model's `<#>` computes (the inner product of query and stored vectors, as query/ranked.py's exact
scan does). Recall@10 of an image = the share of its same-theme images (at most 10) found among its 10 nearest;
the table gives the mean over all images. The baseline is the default list order: the 10 newest other images,
uploads arriving in a shuffled order.
"""

from __future__ import annotations

import argparse
import random
import time

from infra.embeddings import PromptEncoder, query_vector, stored_vector
from infra.media import image_descriptor, inspect_upload
from tests.themes import THEMES, draw


def recall_at_10(labels: list[str], ranked: list[list[int]]) -> float:
    total = 0.0
    for n, order in enumerate(ranked):
        same = [m for m in range(len(labels)) if m != n and labels[m] == labels[n]]
        found = sum(1 for m in order[:10] if labels[m] == labels[n])
        total += found / min(10, len(same))
    return total / len(ranked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-theme", type=int, default=6)
    parser.add_argument("--weight", type=float, default=0.5, help="prompt weight of the combined row")
    args = parser.parse_args()

    labels, prompts, descriptors = [], [], []
    for theme, texts in THEMES.items():
        for n in range(args.per_theme):
            labels.append(theme)
            prompts.append(texts[n % len(texts)])
            checked = inspect_upload(draw(theme, n), max_bytes=1 << 24, max_pixels=1 << 24)
            descriptors.append(image_descriptor(checked))
    started = time.perf_counter()
    prompt_vectors = PromptEncoder().encode(prompts)
    encode_s = time.perf_counter() - started
    stored: list[list[float]] = []
    for p, d in zip(prompt_vectors, descriptors, strict=True):
        vector = stored_vector(p, d)
        assert vector is not None
        stored.append(vector)

    def ranked(prompt_weight: float) -> list[list[int]]:
        out = []
        for n, own in enumerate(stored):
            q = query_vector(own, prompt_weight, 1 - prompt_weight)
            scores = [(-sum(a * b for a, b in zip(q, v, strict=True)), m) for m, v in enumerate(stored) if m != n]
            out.append([m for _, m in sorted(scores)])
        return out

    arrival = list(range(len(labels)))
    random.Random(7).shuffle(arrival)
    newest_first = sorted(range(len(labels)), key=lambda m: -arrival.index(m))
    by_date = [[m for m in newest_first if m != n] for n in range(len(labels))]

    print(f"{len(labels)} images, {len(THEMES)} themes x {args.per_theme}; prompts encoded in {encode_s:.2f} s")
    print(f"{'ranking':<34} recall@10")
    print(f"{'date order (baseline)':<34} {recall_at_10(labels, by_date):.3f}")
    print(f"{'prompt only (w_p = 1)':<34} {recall_at_10(labels, ranked(1.0)):.3f}")
    print(f"{'image only (w_p = 0)':<34} {recall_at_10(labels, ranked(0.0)):.3f}")
    print(f"{f'combined (w_p = {args.weight:g})':<34} {recall_at_10(labels, ranked(args.weight)):.3f}")


if __name__ == "__main__":
    main()
