"""Rules every piece of user text follows, shared by the entry, category and tag checks."""

import re
import unicodedata

# Search highlights are marked with two private-use characters, so user text may not hold them.
MARK_START, MARK_END = "\ue000", "\ue001"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ue000\ue001]")
_HASHTAG = re.compile(r"(?<![\w&#/])#(\w[\w-]*)")
_TAG = re.compile(r"^[\w-]+$")
TAG_MAX = 50
TAGS_MAX = 20
JOINERS = frozenset("\u200c\u200d")  # zero-width non-joiner and joiner


def text_problem(value: str) -> str | None:
    """Why a piece of text cannot be stored, or None."""
    if "\x00" in value:
        return "It contains a NUL character, which is not allowed."
    if _CONTROL.search(value):
        return "It contains a control character that is not allowed."
    return None


def label_problem(value: str) -> str | None:
    """Why a short label (a category name) cannot be stored: invisible formatting characters
    (bidi overrides and isolates, zero-width spaces, soft hyphens) make one name look like
    another. Joiners stay (emoji sequences and some scripts need them)."""
    for char in value:
        if unicodedata.category(char) == "Cf" and char not in JOINERS:
            return f"It contains an invisible formatting character (U+{ord(char):04X})."
    return None


def normalise_tag(raw: str) -> str:
    return raw.strip().lstrip("#").lower()


def parse_tags(field: list[str] | str, body: str = "") -> list[str]:
    """Tags from a tags field (list, or text split on commas/spaces) and the body's #hashtags.

    Raises ValueError with a sentence a person can act on.
    """
    raw = re.split(r"[\s,]+", field) if isinstance(field, str) else list(field)
    # A #hashtag in the text is only a tag when it makes a valid one; otherwise it is just text.
    hashtags = [normalise_tag(h) for h in _HASHTAG.findall(body)]
    raw += [h for h in hashtags if len(h) <= TAG_MAX and _TAG.match(h)]
    tags: list[str] = []
    for item in raw:
        tag = normalise_tag(item)
        if not tag:
            continue
        if len(tag) > TAG_MAX:
            raise ValueError(f"A tag may have at most {TAG_MAX} characters: #{tag[:20]}… has more.")
        if not _TAG.match(tag):
            raise ValueError(f"Tags may use letters, digits, - and _ only: {tag[:50]!r} does not.")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > TAGS_MAX:
        raise ValueError(f"Use at most {TAGS_MAX} tags; this entry has {len(tags)}.")
    return tags


# Markdown's marks, for text shown as plain text (search snippets): links keep their words, line
# starts lose heading, quote and list marks, and emphasis, code and strike marks go.
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)\s]*\)?")
_MD_LINE = re.compile(r"(?m)^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d{1,9}[.)][ \t]+)+")
_MD_RULE = re.compile(r"(?m)^[ \t]*(?:[-*_][ \t]*){3,}$")
_MD_MARKS = re.compile(r"\*+|~~|`+|(?<!\w)_+(?=\S)|(?<=\S)_+(?!\w)")
_SPACE = re.compile(r"\s+")


def plain_text(markdown: str | None) -> str | None:
    """A piece of Markdown as the words a reader sees, on one line (None stays None)."""
    if markdown is None:
        return None
    text = _MD_RULE.sub(" ", markdown)
    text = _MD_LINE.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_MARKS.sub("", text)
    return _SPACE.sub(" ", text).strip()
