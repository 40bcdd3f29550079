"""'Did you mean' hints: a misspelt key should cost seconds, not a support call."""

from __future__ import annotations

from collections.abc import Iterable

# Words other phones and PBXs use for our keys, which spelling distance misses.
SYNONYMS = {
    "extension": "username",
    "user": "username",
    "user_id": "username",
    "display_name": "cid_name",
    "caller_id": "cid_name",
    "auth_user": "auth_id",
    "auth_username": "auth_id",
    "authentication_id": "auth_id",
    "secret": "password",
    "codec_order": "codecs",
    "codec": "codecs",
    "proxy": "registrar",
    "server": "registrar",
    "expires": "registration_timeout",
    "registration_expiry": "registration_timeout",
}


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    pool = sorted(set(candidates))
    synonym = SYNONYMS.get(word.lower().replace("-", "_"))
    if synonym in pool:
        return f" (did you mean {synonym!r}?)"
    import difflib  # only a misspelling pays for it

    matches = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    if not matches:
        lowered = {c.lower(): c for c in pool}
        matches = [lowered[word.lower()]] if word.lower() in lowered else []
    return f" (did you mean {matches[0]!r}?)" if matches else ""
