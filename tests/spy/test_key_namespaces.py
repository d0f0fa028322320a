"""Key namespaces of cache libraries (Flask-Caching's CACHE_KEY_PREFIX) in the classifier."""

from __future__ import annotations

from pytest_cachesync.staleness.patterns import KeyClassifier


def test_a_key_matches_its_pattern_with_or_without_the_namespace() -> None:
    namespaces: list[str] = []
    classifier = KeyClassifier("view/* flask_cache_*", "cachesync:gw0:", namespaces=namespaces)
    key = "cachesync:gw0:flask_cache_view//lots"
    assert classifier.pattern_for(key) == "flask_cache_*"
    namespaces.append("flask_cache_")  # routed after the first lookup: the memo must not stick
    assert classifier.pattern_for(key) == "view/*"
    assert classifier.pattern_for("cachesync:gw0:flask_cache_ACBZ9djrIZiB2X") == "flask_cache_*"
    assert classifier.matches(key, "view//lots")
    assert classifier.matches(key, "flask_cache_view//*")
    assert not classifier.matches(key, "view//users")


def test_the_first_pattern_wins_across_both_forms() -> None:
    classifier = KeyClassifier("flask_cache_* view/*", namespaces=["flask_cache_"])
    assert classifier.pattern_for("flask_cache_view//lots") == "flask_cache_*"


def test_other_keys_are_untouched() -> None:
    classifier = KeyClassifier("view/*", namespaces=["flask_cache_"])
    assert classifier.pattern_for("session:1") is None
    assert classifier.pattern_for("other_view/x") is None
