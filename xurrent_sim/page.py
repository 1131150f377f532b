"""The simulator's web page: list, create and edit requests, add notes (no JavaScript).

It acts as the account owner (a person, not the API token's integration user), needs no
token (the simulator is a local test server), and posts its forms to the simulator
itself. Every value shown goes through html.escape.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from xurrent_sim.store import (
    CATEGORIES,
    COMPLETION_REASONS,
    IMPACTS,
    OWNER_ID,
    STATUSES,
    BadQuery,
    NotFound,
    ValidationFailed,
)

if TYPE_CHECKING:
    from xurrent_sim.server import Simulator

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:60em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.3em;text-align:left}
form.box{border:1px solid #ccc;padding:.8em;margin:1em 0;background:#fafafa}
label{display:inline-block;min-width:9em}.errors{color:#a00}
.note{border-left:3px solid #ccc;padding-left:.6em;margin:.6em 0}
.internal{border-color:#d90}small{color:#666}
"""


@dataclass
class Answer:
    status: int = 200
    html: str = ""
    redirect: str | None = None


def handle(sim: Simulator, method: str, path: str, query: str, form: dict[str, str]) -> Answer:
    if path in ("/", "/requests") and method == "GET":
        return index(sim, query)
    if path == "/requests" and method == "POST":
        return create(sim, form)
    match = re.fullmatch(r"/requests/(\d+)(/notes)?", path)
    if match and method == "GET" and not match.group(2):
        return detail(sim, int(match.group(1)))
    if match and method == "POST":
        request_id = int(match.group(1))
        return add_note(sim, request_id, form) if match.group(2) else edit(sim, request_id, form)
    raise NotFound(f"No page at {path}")


def not_found(message: str) -> str:
    return layout("Not found", f"<p>{escape(message)}</p><p><a href='/'>All requests</a></p>")


# ---- pages


def index(sim: Simulator, query: str, errors: list[list[str]] | None = None, form=None) -> Answer:
    params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
    filter_text = params.get("filter", "")
    problem = ""
    try:
        filters = urllib.parse.parse_qsl(filter_text, keep_blank_values=True)
        requests = sim.store.list_requests(filters + [("sort", "-id")])
    except BadQuery as error:
        problem, requests = str(error), []
    rows = "".join(
        "<tr>"
        f"<td><a href='/requests/{r['id']}'>{r['id']}</a></td>"
        f"<td><a href='/requests/{r['id']}'>{escape(r['subject'])}</a></td>"
        f"<td>{escape(r['category'])}</td><td>{escape(r['status'])}</td>"
        f"<td>{escape(r['impact'] or '')}</td><td>{escape(_name(r['team']))}</td>"
        f"<td>{escape(_name(r['member']))}</td><td>{escape(r['source'] or '')}</td>"
        f"<td>{escape(r['sourceID'] or '')}</td><td>{escape(r['updated_at'])}</td>"
        "</tr>"
        for r in requests
    )
    table = (
        "<table><tr><th>id</th><th>subject</th><th>category</th><th>status</th><th>impact</th>"
        "<th>team</th><th>member</th><th>source</th><th>sourceID</th><th>updated</th></tr>"
        f"{rows}</table>"
        if requests
        else "<p>No requests.</p>"
    )
    body = (
        f"<p>Account <b>{escape(sim.account)}</b> · API at <code>{escape(sim.base_url)}/v1</code>"
        " · <a href='/'>refresh</a></p>"
        "<form method='get' action='/'><label>Filter (API syntax)</label> "
        f"<input name='filter' size='40' value='{escape(filter_text)}' "
        "placeholder='category=incident&amp;status=!completed'> <button>Filter</button></form>"
        + (f"<p class='errors'>{escape(problem)}</p>" if problem else "")
        + table
        + create_form(sim, errors, form or {})
    )
    return Answer(422 if errors else 200, layout("Requests", body))


def create_form(sim: Simulator, errors, form: dict[str, str]) -> str:
    return (
        "<form class='box' method='post' action='/requests'><h2>New request</h2>"
        + _errors(errors)
        + _field(
            "Subject", f"<input name='subject' size='60' value='{escape(form.get('subject', ''))}'>"
        )
        + _field("Category", _select("category", CATEGORIES, form.get("category", "incident")))
        + _field("Impact", _select("impact", ("",) + IMPACTS, form.get("impact", "medium")))
        + _field("Team", _team_select(sim, form.get("team_id", "")))
        + _field(
            "Note",
            f"<textarea name='note' rows='3' cols='60'>{escape(form.get('note', ''))}</textarea>",
        )
        + "<button>Create</button></form>"
    )


def detail(sim: Simulator, request_id: int, errors=None, note_errors=None) -> Answer:
    request = sim.store.get_request(request_id)
    notes = sim.store.list_notes(request_id, [("sort", "id"), ("per_page", "100")])
    facts = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(_show(request[name]))}</td></tr>"
        for name in (
            "id", "category", "status", "completion_reason", "impact", "urgent", "team",
            "member", "requested_by", "requested_for", "source", "sourceID",
            "created_at", "updated_at", "completed_at",
        )
    )  # fmt: skip
    edit_form = (
        f"<form class='box' method='post' action='/requests/{request_id}'><h2>Edit</h2>"
        + _errors(errors)
        + _field(
            "Subject", f"<input name='subject' size='60' value='{escape(request['subject'])}'>"
        )
        + _field("Category", _select("category", CATEGORIES, request["category"]))
        + _field("Status", _select("status", STATUSES, request["status"]))
        + _field(
            "Completion reason",
            _select(
                "completion_reason", ("",) + COMPLETION_REASONS, request["completion_reason"] or ""
            ),
        )
        + _field("Impact", _select("impact", ("",) + IMPACTS, request["impact"] or ""))
        + _field("Team", _team_select(sim, str(request["team"]["id"])))
        + _field("Member", _person_select(sim, str((request["member"] or {}).get("id", ""))))
        + "<button>Save</button></form>"
    )
    note_items = "".join(
        f"<div class='note{' internal' if n['internal'] else ''}'>"
        f"<small>#{n['id']} · {escape(n['person']['name'] or '')} · {escape(n['created_at'])}"
        f"{' · internal' if n['internal'] else ''}</small><div>{escape(n['text'])}</div></div>"
        for n in notes
    )
    note_form = (
        f"<form class='box' method='post' action='/requests/{request_id}/notes'><h2>Add a note</h2>"
        + _errors(note_errors)
        + "<textarea name='text' rows='4' cols='60'></textarea><br>"
        "<label><input type='checkbox' name='internal' value='1'> internal</label> "
        "<button>Add note</button></form>"
    )
    body = (
        "<p><a href='/'>All requests</a></p>"
        f"<table>{facts}</table>{edit_form}<h2>Notes</h2>"
        f"{note_items or '<p>No notes.</p>'}{note_form}"
    )
    status = 422 if errors or note_errors else 200
    return Answer(status, layout(f"Request {request_id}: {request['subject']}", body))


# ---- form posts


def create(sim: Simulator, form: dict[str, str]) -> Answer:
    body = {
        "subject": form.get("subject", ""),
        "category": form.get("category", ""),
        "impact": form.get("impact") or None,
        "team_id": _int(form.get("team_id")),
    }
    if form.get("note", "").strip():
        body["note"] = form["note"]
    try:
        shown, change = sim.store.create_request(body, OWNER_ID)
    except ValidationFailed as error:
        return index(sim, "", error.errors, form)
    _written(sim, change)
    return Answer(redirect=f"/requests/{shown['id']}")


def edit(sim: Simulator, request_id: int, form: dict[str, str]) -> Answer:
    body = {
        "subject": form.get("subject", ""),
        "category": form.get("category", ""),
        "status": form.get("status", ""),
        "completion_reason": form.get("completion_reason") or None,
        "impact": form.get("impact") or None,
        "team_id": _int(form.get("team_id")),
        "member_id": _int(form.get("member_id")),
    }
    try:
        _, change = sim.store.update_request(request_id, body, OWNER_ID)
    except ValidationFailed as error:
        return detail(sim, request_id, errors=error.errors)
    _written(sim, change)
    return Answer(redirect=f"/requests/{request_id}")


def add_note(sim: Simulator, request_id: int, form: dict[str, str]) -> Answer:
    body = {"text": form.get("text", ""), "internal": form.get("internal") == "1"}
    try:
        _, change = sim.store.add_note(request_id, body, OWNER_ID)
    except ValidationFailed as error:
        return detail(sim, request_id, note_errors=error.errors)
    _written(sim, change)
    return Answer(redirect=f"/requests/{request_id}")


def _written(sim: Simulator, change) -> None:
    if change.events:
        sim.count("page:writes")
        sim.emit(change.events, sim.store.person(OWNER_ID), early=False)


# ---- helpers


def layout(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} · Xurrent simulator</title><style>{STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def _errors(errors: list[list[str]] | None) -> str:
    if not errors:
        return ""
    items = "".join(f"<li>{escape(field)}: {escape(text)}</li>" for field, text in errors)
    return f"<ul class='errors'>{items}</ul>"


def _field(label: str, control: str) -> str:
    return f"<div><label>{escape(label)}</label> {control}</div>"


def _select(name: str, choices, current: str) -> str:
    options = "".join(
        f"<option value='{escape(c)}'{' selected' if c == current else ''}>"
        f"{escape(c or '—')}</option>"
        for c in choices
    )
    return f"<select name='{escape(name)}'>{options}</select>"


def _team_select(sim: Simulator, current: str) -> str:
    options = "".join(
        f"<option value='{t['id']}'{' selected' if str(t['id']) == current else ''}>"
        f"{escape(t['name'])}</option>"
        for t in sim.store.teams()
    )
    return f"<select name='team_id'>{options}</select>"


def _person_select(sim: Simulator, current: str) -> str:
    options = "<option value=''>—</option>" + "".join(
        f"<option value='{p['id']}'{' selected' if str(p['id']) == current else ''}>"
        f"{escape(p['name'])}</option>"
        for p in sim.store.people()
    )
    return f"<select name='member_id'>{options}</select>"


def _name(ref: dict | None) -> str:
    return (ref or {}).get("name") or ""


def _show(value) -> str:
    if isinstance(value, dict):
        return value.get("name") or str(value.get("id"))
    return "" if value is None else str(value)


def _int(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None
