"""One spelling of booleans for text input (infra/http.py): a list filter and an upload's form field agree."""

from __future__ import annotations

import pytest

from command.image_upload import _flag
from infra.errors import Invalid
from infra.http import read_bool
from query.filters import Flag

SPELLED = ["true", "TRUE", "1", "yes", "On", "false", "False", "0", "NO", "off"]
NOT_BOOLEANS = ["", "2", "y", "t", "truthy", "nein"]


@pytest.mark.parametrize("raw", SPELLED)
def test_the_filter_and_the_upload_read_a_spelling_alike(raw: str) -> None:
    expected = raw.lower() in {"true", "1", "yes", "on"}
    assert read_bool(raw) is expected
    assert Flag().read(raw) is expected
    assert _flag(f" {raw} ") is expected  # a form field may carry spaces around it


@pytest.mark.parametrize("raw", NOT_BOOLEANS)
def test_anything_else_is_refused_by_both(raw: str) -> None:
    assert read_bool(raw) is None
    with pytest.raises(ValueError):
        Flag().read(raw)
    with pytest.raises(Invalid):
        _flag(raw)
