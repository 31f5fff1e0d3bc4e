"""Varied prompts and their real sentence-model vectors for the scale benchmark, cached on disk.

    nice -n 19 .venv/bin/python -m bench.prompt_corpus [--count 1000000]

The prompts are compositional: subject, what it does, where, a style, a light and a few quality tags, each drawn
from word lists the way Stable Diffusion prompts are written ("a weathered fox knight resting in a flooded
library at dusk, oil painting, rim lighting, highly detailed"). The lists give far more than a million distinct
prompts; `prompts(count)` is the same list on every machine (seeded), and its first n are the same whatever
`count` is, so a benchmark can use the first n of a partly encoded cache.

Vectors come from the real code (infra/embeddings.PromptEncoder: the packaged all-MiniLM-L6-v2, rounded as
recorded in ImageEmbedded) in shards of SHARD prompts, each written as float32 numpy to
bench/.cache/prompt-vectors/ once it is complete (written beside, then renamed), so a rerun or a killed run
encodes only what is missing. Within a shard the prompts are encoded in length order (less padding) and put
back in their own order.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from infra.embeddings import EMBEDDING_VERSION, PROMPT_DIMS, PromptEncoder

SHARD = 10_000
BATCH = 64
SEED = 12
CACHE = Path(__file__).resolve().parent / ".cache" / f"prompt-vectors-v{EMBEDDING_VERSION}-s{SEED}"

ADJECTIVES = ("ancient", "tiny", "giant", "weathered", "glowing", "mechanical", "crystal", "golden", "shadowy",
              "cheerful", "lonely", "armored", "fluffy", "ghostly", "rusty", "elegant", "feral", "sleepy",
              "celestial", "wooden", "porcelain", "neon", "frozen", "burning", "overgrown", "royal", "cybernetic",
              "paper", "stone", "velvet", "hungry", "curious", "battle-worn", "translucent", "tattooed", "masked")
SUBJECTS = ("fox", "cat", "dog", "owl", "wolf", "horse", "dragon", "knight", "samurai", "wizard", "witch",
            "astronaut", "robot", "mech", "girl", "old man", "queen", "pirate", "monk", "deer", "whale",
            "octopus", "butterfly", "lighthouse", "castle", "cottage", "temple", "train", "sailboat", "spaceship",
            "city", "village", "tree", "mushroom", "teapot", "bicycle", "guitar", "violin", "tiger", "rabbit",
            "bear", "raven", "jellyfish", "golem", "angel", "vampire", "detective", "chef", "dancer", "skater")
ACTIONS = ("standing", "resting", "flying", "reading a book", "drinking tea", "fighting a storm",
           "playing music", "sleeping", "dancing", "watching the stars", "walking", "fishing", "painting",
           "praying", "running", "hiding", "floating", "burning", "waiting", "exploring", "guarding a gate",
           "casting a spell", "climbing", "swimming", "smiling", "crying", "eating noodles", "on fire")
PLACES = ("in a misty forest", "on a snowy mountain", "in a flooded library", "on a neon street",
          "in a desert", "under the sea", "on the moon", "in a sunflower field", "in a ruined cathedral",
          "at a night market", "in a bamboo grove", "on a rooftop", "in a cozy kitchen", "on a frozen lake",
          "in a jungle temple", "in space", "on a beach", "in a cyberpunk alley", "in a medieval tavern",
          "inside a greenhouse", "on a train platform", "in a canyon", "above the clouds", "in a coral reef",
          "in a haunted mansion", "in a snow globe", "on a battlefield", "in a laboratory", "at a harbor",
          "in a volcano", "in an autumn park", "in a tea garden", "on a highway", "in a subway car")
TIMES = ("at dawn", "at sunset", "at night", "at golden hour", "in the rain", "during a thunderstorm",
         "in winter", "in spring", "at noon", "under an aurora", "under a full moon", "in the fog")
STYLES = ("oil painting", "watercolor", "digital painting", "pencil sketch", "ink drawing", "anime",
          "studio ghibli style", "pixel art", "low poly", "isometric", "photograph", "35mm film",
          "polaroid", "concept art", "matte painting", "ukiyo-e", "art nouveau", "baroque", "surrealism",
          "vaporwave", "synthwave", "charcoal", "gouache", "stained glass", "claymation", "3d render",
          "octane render", "unreal engine", "comic book", "children's book illustration", "tarot card",
          "linocut", "impressionism", "cubism", "pop art", "blueprint", "embroidery", "mosaic")
LIGHTS = ("cinematic lighting", "soft light", "rim lighting", "volumetric fog", "god rays", "bokeh",
          "neon glow", "candlelight", "harsh shadows", "backlit", "studio lighting", "moonlight",
          "bioluminescent", "dramatic lighting", "overcast", "warm tones", "cold palette", "pastel colors",
          "monochrome", "vibrant colors", "muted colors", "high contrast")
TAGS = ("highly detailed", "masterpiece", "best quality", "8k", "sharp focus", "intricate", "trending on artstation",
        "award winning", "ultra realistic", "wide angle", "close-up", "symmetrical", "macro", "depth of field",
        "by greg rutkowski", "by alphonse mucha", "by hayao miyazaki", "by moebius", "by beksinski",
        "by james gurney", "minimalist", "epic", "cute", "dark fantasy", "whimsical", "melancholic")


def _one(rng: random.Random) -> str:
    subject = f"{rng.choice(ADJECTIVES)} {rng.choice(SUBJECTS)}"
    if rng.random() < 0.4:
        subject = f"{rng.choice(ADJECTIVES)} {subject}"
    article = "an" if subject[0] in "aeiou" else "a"
    parts = [f"{article} {subject} {rng.choice(ACTIONS)} {rng.choice(PLACES)}"]
    if rng.random() < 0.6:
        parts[0] += f" {rng.choice(TIMES)}"
    parts.append(rng.choice(STYLES))
    parts += rng.sample(LIGHTS, rng.randint(0, 2))
    parts += rng.sample(TAGS, rng.randint(0, 4))
    if rng.random() < 0.5:
        head, *rest = parts
        rng.shuffle(rest)  # people write the tags in any order
        parts = [head, *rest]
    return ", ".join(parts)


def prompts(count: int, seed: int = SEED) -> list[str]:
    """`count` distinct prompts; the first n are the same for every count >= n."""
    rng, seen = random.Random(seed), dict[str, None]()
    while len(seen) < count:
        seen.setdefault(_one(rng), None)
    return list(seen)


def _shard_path(n: int) -> Path:
    return CACHE / f"shard-{n:05d}.npy"


def encode_shards(count: int, report: bool = True) -> None:
    """Encode every missing shard of the first `count` prompts (rounded up to whole shards)."""
    texts = prompts(-(-count // SHARD) * SHARD)
    encoder = PromptEncoder()
    CACHE.mkdir(parents=True, exist_ok=True)
    for shard in range(len(texts) // SHARD):
        path = _shard_path(shard)
        if path.exists():
            continue
        started = time.perf_counter()
        chunk = texts[shard * SHARD:(shard + 1) * SHARD]
        order = sorted(range(len(chunk)), key=lambda n: len(chunk[n]))
        vectors = np.zeros((len(chunk), PROMPT_DIMS), dtype=np.float32)
        for at in range(0, len(order), BATCH):
            picked = order[at:at + BATCH]
            for n, vector in zip(picked, encoder.encode([chunk[n] for n in picked]), strict=True):
                assert vector is not None
                vectors[n] = vector
        partial = path.with_suffix(".partial.npy")
        np.save(partial, vectors)
        partial.rename(path)
        if report:
            print(f"shard {shard}: {len(chunk)} prompts in {time.perf_counter() - started:.0f} s", flush=True)


def cached(count: int) -> np.ndarray:
    """The vectors of the first `count` prompts (float32, count x PROMPT_DIMS), from complete shards only."""
    shards = -(-count // SHARD)
    missing = [n for n in range(shards) if not _shard_path(n).exists()]
    if missing:
        raise FileNotFoundError(f"shards {missing[:5]}... of {CACHE} are not encoded: run bench.prompt_corpus")
    return np.concatenate([np.load(_shard_path(n)) for n in range(shards)])[:count]


def available() -> int:
    """How many prompts have vectors in complete shards from the first one on."""
    n = 0
    while _shard_path(n).exists():
        n += 1
    return n * SHARD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads: on busy shared cores one thread"
                        " wastes nothing waiting for a descheduled sibling")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    encode_shards(args.count)
    print(f"{available()} prompt vectors in {CACHE}")


if __name__ == "__main__":
    main()
