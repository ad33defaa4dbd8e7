"""The API's JSON parser: DRF's, refusing (400) what would break a request further on."""

import io

from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Bodies are records, sessions and carts: a few levels deep. A deeper one is refused before
# anything walks it (a thousand levels exhaust Python's recursion as the body is stored).
MAX_DEPTH = 32
_CONTAINERS = (dict, list)


class JSONParser(parsers.JSONParser):
    """Refuses nesting past ``MAX_DEPTH`` and strings with NUL characters (which PostgreSQL
    cannot store), as DRF refuses malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels") from None
        if deeper_than(data, MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_DEPTH} levels")
        # A NUL can only arrive escaped; the text is searched first, the strings only if it may hold one.
        if b"\\u0000" in raw and holds_nul(data):
            raise ParseError("JSON parse error - strings may not contain NUL characters (\\u0000)")
        return data


def _containers(data, limit: int):
    """Each level of containers in turn (lists and objects), at most ``limit`` levels."""
    level = [data] if type(data) in _CONTAINERS else []
    for _ in range(limit):
        if not level:
            return
        yield level
        deeper = []
        for item in level:  # parsed JSON holds plain dicts and lists: ``type`` is enough, and fast
            values = item.values() if type(item) is dict else item
            deeper.extend([value for value in values if type(value) in _CONTAINERS])
        level = deeper
    if level:
        yield level


def deeper_than(data, limit: int = MAX_DEPTH) -> bool:
    """Whether parsed JSON nests containers more than ``limit`` levels deep."""
    return sum(1 for _ in _containers(data, limit)) > limit


def holds_nul(data) -> bool:
    """Whether a string of parsed JSON (a key or a value) holds a NUL character."""
    if isinstance(data, str):
        return "\x00" in data
    for level in _containers(data, MAX_DEPTH):
        for item in level:
            texts = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            if any(isinstance(text, str) and "\x00" in text for text in texts):
                return True
    return False
