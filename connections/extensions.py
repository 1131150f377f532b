"""Where the apps built on connections add their parts to its pages.

Dependencies point one way (DESIGN.md §2): `connections` never imports `invitations` or
`sync`. They register a template for a named place on a page here, from their AppConfig,
and the page includes whatever was registered there, with its own context.
"""

from __future__ import annotations

from collections import defaultdict

# Places on the pages: "list.buttons" (beside the Connections title), "detail.after_status"
# and "detail.after_facts" (a connection's page).
_sections: dict[str, list[str]] = defaultdict(list)


def add_section(place: str, template_name: str) -> None:
    if template_name not in _sections[place]:
        _sections[place].append(template_name)


def sections(place: str) -> list[str]:
    return list(_sections[place])
