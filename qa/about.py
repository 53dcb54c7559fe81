"""Questions about the document itself: its title, its topic, a summary.

Why: "What is this speech about?" and "What is the title of the talk?" are the first
things a newcomer asks, and ranking cannot answer them: they share no words with any
sentence, so the best sentence is a guess and its confidence is low (the product said "no
answer").  The document does answer them, with its title line and its opening.  Such a
question is recognised by its shape (a document noun after *this/the*, and nothing else
asked), so a question about something *in* the document ("What is the name of the aid
agency?", "Which title did the city receive?") is never taken for one.
"""

from __future__ import annotations

import re

#: Nouns a user calls the document by.
_DOCUMENT = (r"(?:speech|talk|address|lecture|presentation|document|text|report|paper|article|"
             r"essay|book|file|letter|statement|transcript|collection)")
_THE = r"(?:this|the|that|your)"
_BE = r"(?:'s|’s|\s+is|\s+was)"
_ASPECT = r"(?:title|name|topic|subject|theme|gist|main point|main idea|focus|summary|overview)"
_END = r"\s*[?.!]?\s*$"

_PATTERNS = tuple(re.compile(pattern, re.IGNORECASE) for pattern in (
    # "What is the title of this talk?", "the main topic of the speech?"
    rf"^\s*(?:what{_BE}\s+)?(?:the\s+)?(?:(?:main|overall|central|general|key)\s+)?{_ASPECT}\s+of\s+"
    rf"{_THE}\s+{_DOCUMENT}{_END}",
    # "What is this speech about?", "What is the talk called?"
    rf"^\s*what{_BE}\s+{_THE}\s+{_DOCUMENT}\s+(?:(?:mainly|mostly|largely|generally|really|all)\s+)?"
    rf"(?:about|called|titled|entitled|named){_END}",
    # "What is the speech's title?"
    rf"^\s*what{_BE}\s+{_THE}\s+{_DOCUMENT}(?:'s|’s)\s+(?:(?:main|overall|central)\s+)?{_ASPECT}{_END}",
    # "What is the main topic?", "What's the title?"
    rf"^\s*what{_BE}\s+the\s+(?:(?:main|overall|central|general)\s+)?(?:title|topic|subject|theme){_END}",
    # "Summarize the speech", "Give me a summary of this document"
    rf"^\s*(?:please\s+)?(?:summari[sz]e|sum up|(?:give|show)\s+(?:me\s+)?(?:a|an|the)\s+"
    rf"(?:summary|overview|gist)\s+of)\s+{_THE}\s+{_DOCUMENT}{_END}",
    # "What does this speech cover?"
    rf"^\s*what\s+(?:does|did)\s+{_THE}\s+{_DOCUMENT}\s+(?:cover|discuss|deal\s+with|talk\s+about|"
    rf"describe|address){_END}",
))

#: A title line has at most this many words (longer lines are prose).
TITLE_MAX_WORDS = 20

NO_TITLE_NOTICE = ("This question is about the document itself, which has no title line: "
                   "here is how it opens.")
MANY_NOTICE = ("This question is about the document itself, and this collection holds {count} "
               "documents: here is how each one opens. Name one in the question to ask about it.")


def asks_about_document(question: str) -> bool:
    """Whether ``question`` asks for the document's title, topic or a summary."""
    return any(pattern.search(question) for pattern in _PATTERNS)


def is_title(sentence: str, whole_paragraph: bool) -> bool:
    """Whether a document's first sentence reads as a title line.

    Args:
        sentence: The sentence's text.
        whole_paragraph: Whether it is its paragraph's only sentence (a title stands alone).
    """
    text = sentence.strip()
    words = text.split()
    return (whole_paragraph and 0 < len(words) <= TITLE_MAX_WORDS
            and not re.search(r"[.,;:!?]$", text) and any(c.isalpha() for c in text))
