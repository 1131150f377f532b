"""xurrent_sim: a stand-alone simulator of the part of the Xurrent REST API the node uses.

It is for tests and demos; the product never imports it, and it imports neither Django
nor any app of the project (standard library only; PyJWT only with --webhook-key).

Run
    python -m xurrent_sim --port PORT --account NAME --token TOKEN
        [--webhook URL]... [--data FILE] [--rate-limit N] [--webhook-key PEM]
        [--host 127.0.0.1] [--webhook-audience AUD] [--webhook-retries N]
        [--webhook-backoff S] [--burst-limit N] [--first-id N] [--quiet]

`--port 0` takes a free port; the first output line says where it listens:
"xurrent_sim listening on http://127.0.0.1:PORT/v1 ...". The API is at `/v1`, the web
page at `/`, the test controls at `/_sim/`. Every HTTP call and webhook delivery is
logged on stdout (the token never is).

Tests: `xurrent_sim.testing.start_simulator(...)` / `running_simulator(...)` start it in
a subprocess on a free port and return an object with `.url` (`http://127.0.0.1:PORT/v1`),
`.page_url`, `.token`, `.account`, `.headers`, `.stop()` and helpers for `/_sim/`
(`fault()`, `reset()`, `stats()`, `writes()`, `clock()`, `webhooks()`, `wait_for_webhooks()`).

API (JSON in and out; facts from shared/reference/xurrent-api.md and developer.4me.com)
    GET   /v1/requests             list: filters, sort, per_page/page, Link + X-Pagination-*
    POST  /v1/requests             create → 201 (the request)
    GET   /v1/requests/:id         → 200, or 404 {"message"}
    PATCH /v1/requests/:id         update → 200 (PUT is taken as PATCH)
    GET   /v1/requests/:id/notes   list (paginated like requests; default id descending)
    POST  /v1/requests/:id/notes   {"text", "internal"} → 201 {id, person{id,name},
                                   created_at, text, internal, attachments: []}
    GET   /v1/me                   the token's person (+ "account": {id, name}); 4me has it
    GET   /v1/account              {id, name} of the account; 4me has it
    GET   /v1/teams, /v1/people    the seeded teams and people (paginated lists)

Access: `Authorization: Bearer TOKEN` and `X-Xurrent-Account: NAME` (or `X-4me-Account`).
A missing or wrong token, a missing account header or an unknown account all answer 401
`{"message": ...}`; the message says which. (The reference does not say what Xurrent
answers for an unknown account; 401 was chosen so a misconfigured account can never be
mistaken for a missing record, which is what a 404 means here.)

Requests: fields as in xurrent-request-model.md: id, subject (required, ≤255), category
(required enum), impact (enum; required for incidents), status (enum, default assigned;
completed needs completion_reason and sets completed_at), completion_reason, urgent,
team (required), member, requested_by, requested_for, created_by (read as {id, name},
written as team_id, member_id, ...; ids must exist), source (≤30), sourceID (≤128),
custom_fields [{id, value}], desired_completion_at, waiting_until, created_at,
updated_at, completed_at (ISO 8601 to the second, UTC, "Z"), note / internal_note
(write-only, ≤64 KB, add a note). `X-4me-Source` (or `X-Xurrent-Source`) sets `source`
on what a call creates unless the body gives one. A write by the token is made by
person 5 "Integration User"; the web page acts as person 1 "Sam Owner".
A PATCH that changes nothing keeps updated_at and sends no webhook; adding a note moves
the request's updated_at.

Invalid input → 422 `{"message": "Validation Failed: Subject can't be blank, ...",
"errors": [["subject", "can't be blank"], ...]}`: every error is a [field, text] pair
naming the field as written (team_id, not team). Unknown and read-only fields are
refused (422), not ignored, so a client's typo shows. A body that is not JSON → 400.

Lists (developer.4me.com/v1/general/filtering): `field=value` equality; `field=!value`
or `field!=value` negation; `field=` empty; `field=!` or `field!=` present; `a,b` lists
(integers, references and enums only); `<`, `<=`, `>`, `>=` and ranges `>a<b`, `>=a<=b`
(ids and times only). Filters are ANDed. Fields: id (alias ids), status, category,
impact, completion_reason, team (alias team_id), member (alias member_id),
requested_by, requested_for, source, sourceID, created_at, updated_at, completed_at;
notes: id, created_at. Times may be dates or date-times with an offset (none = UTC).
`sort=field` ascending, `sort=-field` descending (id, created_at, updated_at, subject,
status, category, impact; ties by id); default id descending. A filter on an
unsupported field, a bad value or an unknown sort → 400 `{"message"}` (the simulator
refuses rather than silently answering everything).
Pages: `per_page` default 20 (the 4me documentation's default), at most 100: a larger
value is cut to 100 (what Xurrent does above 100 is not documented; clamping was
chosen and `X-Pagination-Per-Page` says what was used). `page` from 1; a page past the
end is an empty list. `Link` has rel first and last always, prev and next when they
exist; X-Pagination-Per-Page/-Current-Page/-Total-Pages/-Total-Entries.

Rate limit: `--rate-limit N` calls per token per hour (default 3600), a fixed window
from the first call. Authenticated answers have X-RateLimit-Limit, -Remaining and
-Reset (epoch seconds); past the limit: 429 `{"message": "Too Many Requests"}` with
Retry-After (seconds to the window's end). 401s are not counted. The window follows the
simulated clock, so `POST /_sim/clock {"advance": 3600}` ends it. `--burst-limit N`
(default 0: off) also refuses, with 429 and Retry-After 1 or 2, a call beyond N in any
2 seconds (Xurrent's burst limit is "about 20 requests in 2 s"; it is off by default so
tests that make many calls quickly are not slowed).

Dates: the `Date` header and all timestamps follow the simulated clock (wall clock plus
an offset moved by `/_sim/clock`).

Webhooks: after each change, POST to every `--webhook` URL (webhook_id = its position,
1-based): events request.create, request.update and request.note-added (a PATCH with a
note sends request.update then request.note-added). Body {"webhook_id", "account",
"event", "object_id", "person_id", "person_name", "payload"}; payload is the request as
the API shows it (plus "note" for request.note-added); a `Link` header points to the
request. With `--webhook-key PEM` (an RSA private key) the body is {"jwt": "..."} signed
RS256 with claims iss (`<api url>/webhook_policies/1`), aud (`--webhook-audience`,
default "xurrent-sim"), sub (the webhook id), jti, iat, nbf, exp (iat + 300) and `data`
(the plain body). Deliveries run on one background thread per URL (in order for that
URL), are retried `--webhook-retries` times in all with a doubling wait from
`--webhook-backoff` seconds, and each attempt is logged.

Control endpoints (no auth; a local test server): JSON in and out.
    GET    /_sim/stats          {"calls": {"GET": n, ...}, "writes": {"POST": n, "PATCH": n},
                                 "endpoints": {"POST /v1/requests": n, ...},
                                 "write_endpoints": {...}, "statuses": {"201": n, ...},
                                 "page_writes": n, "rate_limited": n,
                                 "webhooks": {"delivered": n, "failed": n, ...}}
                                 (writes = API calls that stored a change, including ones
                                 a fault answered with an error)
    POST   /_sim/reset          back to the seed data; faults, counters, clock and rate
                                 window cleared (the data file is rewritten)
    POST   /_sim/faults         one fault object, a list, or {"faults": [...]} → 201
    GET    /_sim/faults         the pending faults;  DELETE /_sim/faults clears them
    GET    /_sim/clock          {"now", "offset"}; POST with {"advance": s} | {"offset": s}
                                 | {"now": "ISO 8601"}
    GET    /_sim/webhooks       the deliveries made (url, event, object_id, attempts,
                                 status, outcome)
    POST   /_sim/webhooks/wait  {"timeout": s} → 200 {"idle": true} once all are sent
A fault: {"kind": ..., "count": 1, "method": "POST", "path": "regex", ...}; `method`
and `path` (searched in the URL path) narrow which API calls it hits; it hits the next
`count` matching calls (or events, for webhook faults), in the order faults were added.
    error        answer `status` (default 500) `{"message"}`; `"store": true` does the
                 write first (default false: nothing happens)
    timeout      sleep `delay` seconds (default 30) then answer; `"store"` default true
                 (stored, answered late); false: nothing stored, answered 504 late
    disconnect   close the connection with no answer; `"store"` default true
    rate_limit   answer 429 with Retry-After `retry_after` (default 1)
    webhook_drop       the event's webhooks are lost
    webhook_duplicate  the event's webhooks are sent twice
    webhook_reorder    hold the next `count` events, then send them newest first
    webhook_early      the event's webhooks are delivered (synchronously) before the
                       write's answer is sent

Web page (`/`): lists requests (with a filter box in the API's syntax), creates one
(subject, category, impact, team, note), shows and edits one (subject, category,
status, completion reason, impact, team, member) and adds notes. No token, no
JavaScript; forms post to the simulator; output is HTML-escaped. Page writes send
webhooks like API writes and are counted apart ("page_writes").

Data: in memory behind one lock; with `--data FILE` loaded at start and written
atomically (temporary file + rename) after each change. Seed: teams 1 Service Desk,
2 Network, 3 Applications; people 1 Sam Owner, 2 Jo Agent, 3 Kim Specialist,
4 Lee Customer, 5 Integration User. Request and note ids start at `--first-id`.

Not simulated (of the reference and of Xurrent): other resources and endpoints
(services, configuration items, tasks, workflows, custom field definitions, GraphQL,
OAuth token endpoint, DELETE, basic auth with an API token); the other webhook
events (request.status-changed, request.team-changed, ...) and webhooks subscribed to a
single event, webhook disabling after repeated failures, and the policy's public-key
download; attachments (refused on notes; never listed); `fields=` selection of
attributes (ignored); filters on fields other than those listed; predefined filters
(/requests/open ...); the `search_after` cursor pagination and X-Pagination-Throttled;
the 100,000-record cap; membership rules (member must belong to the team), templates,
service instances and workflows and what they require; status transition rules other
than completed needing a reason; regional hosts and HTTPS; the `nodeID` field is a
simulator-made string.
"""
