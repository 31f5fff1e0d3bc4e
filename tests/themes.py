"""A labelled set of images for similarity: a few clear themes, each drawn in its own colours and shapes, with
prompts that say the same thing in different words (no content word shared within a theme), so that
`similar=` by prompt, by image and combined can be checked and measured (tests/integration/test_similar.py,
bench/similar_quality.py)."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

THEMES: dict[str, list[str]] = {
    "cat": ["a kitten napping on a couch", "sleepy feline curled up on the sofa",
            "house cat dozing on cushions", "tabby resting in a warm living room",
            "little puss asleep beside a pillow", "drowsy tomcat lounging indoors"],
    "space": ["a rocket lifting off toward the stars", "spacecraft launching into orbit",
              "astronaut floating above the globe", "shuttle blasting through the night sky",
              "galaxy nebula seen from a telescope", "satellite drifting among distant planets"],
    "ocean": ["waves crashing on a sandy beach", "surf rolling onto the seashore",
              "coral reef full of tropical fish", "sailboat on calm blue water",
              "seagulls over the harbour at dawn", "underwater kelp forest with dolphins"],
    "city": ["skyscrapers glowing at night downtown", "busy street with traffic and neon signs",
             "metropolis skyline under a rainy dusk", "subway station crowded with commuters",
             "tall office towers in a financial district", "urban avenue lined with shops"],
}

# Per theme: background, foreground colours and a shape, so pictures of one theme look alike.
_LOOKS = {
    "cat": ((235, 200, 150), (120, 70, 30), "ellipse"),
    "space": ((10, 10, 40), (240, 240, 255), "dots"),
    "ocean": ((30, 110, 200), (240, 230, 180), "waves"),
    "city": ((60, 60, 70), (250, 200, 60), "blocks"),
}


def draw(theme: str, seed: int, size: int = 96) -> bytes:
    """A PNG of `theme`, varied by `seed` (positions, sizes, small colour shifts)."""
    rnd = random.Random(f"{theme}-{seed}")
    background, foreground, shape = _LOOKS[theme]

    def jitter(colour: tuple[int, int, int]) -> tuple[int, int, int]:
        r, g, b = (max(0, min(255, c + rnd.randint(-20, 20))) for c in colour)
        return r, g, b

    image = Image.new("RGB", (size, size), jitter(background))
    pen = ImageDraw.Draw(image)
    fg = jitter(foreground)
    if shape == "ellipse":
        x, y = rnd.randint(5, 40), rnd.randint(30, 50)
        pen.ellipse([x, y, x + rnd.randint(40, 50), y + rnd.randint(25, 40)], fill=fg)
    elif shape == "dots":
        for _ in range(40):
            x, y = rnd.randrange(size), rnd.randrange(size)
            pen.ellipse([x, y, x + 2, y + 2], fill=fg)
    elif shape == "waves":
        for row in range(size // 2, size, 8):
            pen.line([(0, row), (size, row + rnd.randint(-4, 4))], fill=fg, width=3)
    else:
        for x in range(0, size, 16):
            top = rnd.randint(10, 60)
            pen.rectangle([x, top, x + 12, size], fill=(40, 40, 50))
            for wy in range(top + 4, size, 10):
                pen.rectangle([x + 3, wy, x + 6, wy + 3], fill=fg)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
