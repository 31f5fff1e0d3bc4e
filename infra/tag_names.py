r"""The tag-name rule: one function for every place a tag name comes in (POST /api/tags, image and model tags,
and the generation and training requests that carry tags).

A name is stored NFKC-normalised (so fullwidth `\uff23\uff21\uff34` is `CAT`, which compares equal to `cat`:
claims compare case-folded), trimmed, with runs of spaces made one. Refused (422), never silently repaired:
- control characters (tab and newline too: a name is one line);
- invisible characters: format characters (zero-width space and joiners, bidi controls such as U+202E, the BOM,
  soft hyphen), line and paragraph separators, private-use, unassigned and surrogate code points, and the
  default-ignorable fillers and variation selectors that render as nothing; so `c\u200bat` and `abc\u202edef`
  cannot sit beside `cat` and `abcdef` looking the same;
- commas (they separate alternatives in `tag=a,b`) and all-digit names (`tag=7` means the id);
- more than MAX_TAG_NAME characters after normalising, and empty names.
Tags already in the log that break these rules keep their names; only new names are checked.
"""

from __future__ import annotations

import unicodedata

from infra.errors import Invalid

MAX_TAG_NAME = 50
# Categories that are never visible text: control, format, surrogate, private use, unassigned, separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Default-ignorable code points outside those categories (Unicode's DerivedCoreProperties): fillers and
# selectors that render as nothing.
_INVISIBLE_RANGES = ((0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x2800, 0x2800),
                     (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0000, 0xE0FFF))


def _problem(char: str) -> str | None:
    category = unicodedata.category(char)
    if category == "Cc":
        return "control characters"
    point = ord(char)
    if category in _REFUSED_CATEGORIES or any(low <= point <= high for low, high in _INVISIBLE_RANGES):
        return "invisible characters"
    return None


def clean_tag_name(raw: str, field: str = "body.name") -> str:
    """The name as stored, or Invalid (naming `field`) saying what is wrong."""
    normal = unicodedata.normalize("NFKC", raw)
    for char in normal:
        problem = _problem(char)
        if problem:
            raise Invalid(f"A tag name cannot contain {problem} (U+{ord(char):04X}).", field=field)
    name = " ".join(part for part in normal.split(" ") if part)  # NFKC made other spaces plain ones
    if not name:
        raise Invalid("A tag name cannot be empty.", field=field)
    if len(name) > MAX_TAG_NAME:
        raise Invalid(f"A tag name has at most {MAX_TAG_NAME} characters.", field=field)
    if "," in name:
        raise Invalid("A tag name cannot contain commas (they separate tags in filters).", field=field)
    if name.isdigit():
        raise Invalid("A tag name cannot be only digits (it would read as a tag id in filters).", field=field)
    return name
