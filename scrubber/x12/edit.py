"""Change one element of a segment, keeping everything else (delimiters, line break) as found."""

from __future__ import annotations

from .tokenizer import Delimiters, Segment


def set_element(segment: Segment, d: Delimiters, element: int, component: int | None, value: str) -> Segment:
    """A copy of `segment` with element `element` (or one component of it) set to `value`."""
    elements = segment.text.split(d.element)
    while len(elements) <= element:
        elements.append("")
    if component is None:
        elements[element] = value
    else:
        parts = elements[element].split(d.component)
        while len(parts) < component:
            parts.append("")
        parts[component - 1] = value
        while len(parts) > 1 and parts[-1] == "":
            parts.pop()
        elements[element] = d.component.join(parts)
    # Trailing empty elements are not allowed in X12: drop any the edit left behind.
    while len(elements) > 1 and elements[-1] == "":
        elements.pop()
    return Segment(segment.index, segment.offset, d.element.join(elements), segment.suffix)
