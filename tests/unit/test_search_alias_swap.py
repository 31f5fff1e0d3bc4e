"""The Elasticsearch index rebuild's swap (projectors/search/rebuild.py), checked without a server: the one
`_aliases` call that moves the live name to the fresh index and removes the old one."""

from __future__ import annotations

from projectors.search.rebuild import swap_actions


def test_the_first_rebuild_replaces_a_concrete_live_index_by_an_alias() -> None:
    actions = swap_actions("aidraw-images-rm", "aidraw-images-g1", "aidraw-images-rm-rebuild",
                           ["aidraw-images-rm"], live_is_alias=False)
    assert actions == [
        {"remove": {"index": "aidraw-images-g1", "alias": "aidraw-images-rm-rebuild"}},
        {"remove_index": {"index": "aidraw-images-rm"}},
        {"add": {"index": "aidraw-images-g1", "alias": "aidraw-images-rm", "is_write_index": True}},
    ]


def test_a_later_rebuild_moves_the_alias_and_drops_the_old_generation() -> None:
    actions = swap_actions("aidraw-images-rm", "aidraw-images-g2", "aidraw-images-rm-rebuild",
                           ["aidraw-images-g1"], live_is_alias=True)
    assert {"remove_index": {"index": "aidraw-images-g1"}} in actions
    assert {"remove_index": {"index": "aidraw-images-rm"}} not in actions  # an alias is no index to delete
    assert actions[-1] == {"add": {"index": "aidraw-images-g2", "alias": "aidraw-images-rm", "is_write_index": True}}


def test_with_no_live_index_the_alias_is_only_added() -> None:
    actions = swap_actions("aidraw-images-rm", "aidraw-images-g1", "aidraw-images-rm-rebuild", [], live_is_alias=False)
    assert [next(iter(a)) for a in actions] == ["remove", "add"]
