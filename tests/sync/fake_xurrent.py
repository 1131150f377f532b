"""An in-process Xurrent account for engine tests: the simulator's store behind the
calls the engine makes (XurrentClient's), with write counts and failures on demand."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from xurrent.client import AnswerInfo, Page, XurrentError, filter_params
from xurrent_sim.store import TOKEN_PERSON_ID, NotFound, Store, ValidationFailed


class FakeXurrent:
    def __init__(self, account: str = "acme", *, first_id: int = 1):
        self.store = Store(account, first_id=first_id)
        self.writes: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.failures: list[tuple[str, XurrentError, bool]] = []

    # --- test helpers ---------------------------------------------------------------

    def fail_next(
        self, call: str, kind: str = "server_error", *, count: int = 1, store=False, retry_at=None
    ):
        """The next `count` calls of `call` fail with `kind` (after storing, if `store`)."""
        for _ in range(count):
            error = XurrentError(
                kind, f"Simulated {kind} on {call}.", status=500, retry_at=retry_at
            )
            self.failures.append((call, error, store))

    def _failure(self, call: str) -> tuple[XurrentError, bool] | None:
        for index, (name, error, store) in enumerate(self.failures):
            if name == call:
                del self.failures[index]
                return error, store
        return None

    def human_creates(self, **fields) -> dict:
        """A person creates a request on the page (not through the engine)."""
        body = {"category": "other", "team_id": 1, **fields}
        request, _ = self.store.create_request(body)
        return request

    def human_updates(self, request_id: int, **fields) -> dict:
        request, _ = self.store.update_request(request_id, fields)
        return request

    def human_adds_note(self, request_id: int, text: str, internal: bool = False) -> dict:
        note, _ = self.store.add_note(request_id, {"text": text, "internal": internal})
        return note

    def notes(self, request_id: int) -> list[dict]:
        """The request's notes, oldest first."""
        return self.store.list_notes(request_id, [("sort", "id")])

    def texts(self, request_id: int) -> list[str]:
        return [note["text"] for note in self.notes(request_id)]

    def all_requests(self) -> list[dict]:
        return self.store.list_requests([("sort", "id")])

    # --- the calls the engine makes -----------------------------------------------------

    @property
    def last_answer(self) -> AnswerInfo:
        """Xurrent's clock, to the second, as its Date header says it."""
        return AnswerInfo(date=datetime.fromtimestamp(int(self.store.clock.now()), UTC))

    def _call(self, name: str, action, *, write: bool = False):
        self.calls[name] += 1
        failure = self._failure(name)
        if failure is not None:
            error, store = failure
            if store:
                action()
                if write:
                    self.writes[name] += 1
            raise error
        try:
            result = action()
        except NotFound as exc:
            raise XurrentError("not_found", f"Not found in Xurrent: {exc} (404).") from None
        except ValidationFailed as exc:
            errors = [" ".join(e) for e in exc.errors]
            raise XurrentError(
                "validation", f"{exc.message} (422).", status=422, errors=errors
            ) from None
        if write:
            self.writes[name] += 1
        return result

    def request_pages(self, filters=None, *, sort=None, per_page=100, fields=()):
        # `fields` is ignored, as by the simulator: every request is shown whole.
        params = list(filter_params(filters).items())
        if sort:
            params.append(("sort", sort))
        items = self._call("list", lambda: self.store.list_requests(params))
        info = AnswerInfo(date=datetime.fromtimestamp(int(self.store.clock.now()), UTC))
        for start in range(0, max(len(items), 1), per_page):
            yield Page(items=items[start : start + per_page], info=info, total_entries=len(items))

    def has_room(self, calls: int) -> bool:
        return True  # no rate budget here (tests/sync/test_budget_shares.py has one)

    def get_request(self, request_id: int) -> dict:
        return self._call("get", lambda: self.store.get_request(int(request_id)))

    def create_request(self, fields) -> dict:
        def create():
            return self.store.create_request(dict(fields), TOKEN_PERSON_ID, source="exalate")[0]

        return self._call("create", create, write=True)

    def update_request(self, request_id: int, fields) -> dict:
        def update():
            return self.store.update_request(int(request_id), dict(fields), TOKEN_PERSON_ID)[0]

        return self._call("update", update, write=True)

    def list_notes(self, request_id: int):
        return iter(self._call("notes", lambda: self.store.list_notes(int(request_id), [])))

    def add_note(self, request_id: int, text: str, *, internal: bool = False) -> dict:
        def add():
            body = {"text": text, "internal": internal}
            return self.store.add_note(int(request_id), body, TOKEN_PERSON_ID)[0]

        return self._call("add_note", add, write=True)

    def list_teams(self):
        return iter(self._call("teams", self.store.teams))

    def list_people(self):
        return iter(self._call("people", self.store.people))
