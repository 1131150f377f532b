"""AI Assist: a model drafts sync rules from an admin's words.

The prompt is made from the sandbox's own description of what a script can use
(sync.vocabulary), the scripts as the admin has them and the admin's words; the samples
only when the admin ticks the box. Known secrets are taken out of it before it leaves.
Every draft is compiled in the sandbox, a draft that does not compile goes back to the
model once with the errors, and what comes back is test-run on the samples before the
admin sees it. Nothing is saved here: the admin saves the draft as any other edit.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache

from connections.models import Connection
from nodes.models import GeneralSettings
from sync.sandbox import DIRECTIONS, SCRIPT_MAX_LENGTH, Problem, check_script
from sync.services.model_client import ModelEndpoint, ModelError, chat
from sync.services.rules import script_diff
from sync.services.samples import SampleRun, run_samples
from sync.vocabulary import sandbox_description

WORDS_MAX_LENGTH = 2000
SECRET_MIN_LENGTH = 6
REDACTED = "[secret removed]"
NOTE_MAX_LENGTH = 200

SETUP_HELP = (
    "AI Assist is not set up on this node. An admin sets an OpenAI-compatible endpoint "
    "(its URL, the model and, if it needs one, an API key) on the AI Assist settings page, "
    "or starts the node with EXALATE_AI_URL, EXALATE_AI_MODEL and EXALATE_AI_API_KEY. For a "
    "model in your own network, such as a local Ollama (http://127.0.0.1:11434/v1), also "
    "set EXALATE_ALLOW_PRIVATE_NETWORKS=true."
)

ANSWER_FORMAT = """\
Answer with one JSON object and nothing else, in this shape:
{"outgoing": "<the whole outgoing script>", "incoming": "<the whole incoming script>", \
"explanation": "<one or two sentences on what the scripts now do>"}
Write only the scripts you are asked for and leave the other key out. Each script is the
complete new text, not a fragment or a diff. Keep the admin's comments and the parts they
did not ask to change."""


class AssistRefused(Exception):
    """AI Assist cannot draft now (not set up, rate limit); the message says why and
    `status` is the HTTP status a page answers with."""

    def __init__(self, message: str, *, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AssistAsk:
    """What the admin asked for, and what they had in the boxes when they asked."""

    words: str
    directions: tuple[str, ...]
    outgoing: str
    incoming: str
    sample_request: dict[str, Any] | None = None
    sample_replica: dict[str, Any] | None = None
    first_sync: bool = False
    send_samples: bool = False

    def current(self, direction: str) -> str:
        return self.outgoing if direction == "outgoing" else self.incoming


@dataclass
class Draft:
    """A draft the model made, checked in the sandbox and run on the samples."""

    ask: AssistAsk
    scripts: dict[str, str]  # the drafted scripts, by direction
    explanation: str = ""
    problems: dict[str, list[Problem]] = field(default_factory=dict)  # left after the retry
    sent_back: dict[str, list[Problem]] = field(default_factory=dict)  # first answer's
    run: SampleRun | None = None

    def text(self, direction: str) -> str:
        """The script as it stands with the draft: drafted, or as the admin had it."""
        return self.scripts.get(direction, self.ask.current(direction))

    @property
    def diffs(self) -> dict[str, list]:
        return {
            direction: script_diff(
                self.ask.current(direction),
                text,
                direction.capitalize(),
                "your script",
                "the draft",
            )
            for direction, text in self.scripts.items()
        }

    @property
    def compiles(self) -> bool:
        return not self.problems


# --- settings and limits ---------------------------------------------------------------------


def model_endpoint() -> ModelEndpoint | None:
    """The endpoint of the General Settings, or None when AI Assist is not set up."""
    node = GeneralSettings.load()
    if not node.ai_configured:
        return None
    return ModelEndpoint(node.ai_url, node.ai_model, node.ai_api_key)


def _limit_key(user) -> tuple[str, int]:
    window = int(time.time() // 3600)
    return f"ai-assist:{user.pk}:{window}", (window + 1) * 3600


def take_allowance(user) -> None:
    """Count one draft for this user; AssistRefused past the hourly limit."""
    limit = settings.EXALATE_AI_DRAFTS_PER_HOUR
    key, window_ends = _limit_key(user)
    cache.add(key, 0, timeout=3700)
    try:
        count = cache.incr(key)
    except ValueError:  # the entry expired between add and incr
        cache.set(key, 1, timeout=3700)
        count = 1
    if count > limit:
        minutes = max(1, round((window_ends - time.time()) / 60))
        raise AssistRefused(
            f"You have asked for {limit} drafts this hour, the most one person may. Try "
            f"again in about {minutes} minute{'s' if minutes != 1 else ''}.",
            status=429,
        )


# --- the prompt ------------------------------------------------------------------------------


def known_secrets() -> list[str]:
    """Secrets this node holds that must never leave it in a prompt."""
    node = GeneralSettings.load()
    values = [
        node.xurrent_api_token,
        node.ai_api_key,
        settings.SECRET_KEY,
        settings.EXALATE_METRICS_TOKEN,
        *settings.EXALATE_SECRET_KEYS,
        *(
            c.shared_secret
            for c in Connection.objects.exclude(shared_secret="").only("shared_secret")
        ),
    ]
    return sorted(
        {str(v) for v in values if v and len(str(v)) >= SECRET_MIN_LENGTH},
        key=len,
        reverse=True,  # the longest first, so one secret inside another goes whole
    )


def without_secrets(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def _system_message() -> str:
    return "\n\n".join(
        [
            "You write sync rules for Exalate for Xurrent, which keeps requests in two "
            "service desks in sync. Each side of a connection has two scripts.",
            sandbox_description(),
            ANSWER_FORMAT,
        ]
    )


def _user_message(ask: AssistAsk) -> str:
    wanted = " and ".join(f"the {d} script" for d in ask.directions)
    parts = []
    for direction in DIRECTIONS:
        parts.append(
            f"The current {direction} script:\n```python\n{ask.current(direction).rstrip()}\n```"
        )
    if ask.send_samples:
        for label, sample in (
            ("A sample local Xurrent request (REST shape, with its notes)", ask.sample_request),
            ("A sample replica from the other side", ask.sample_replica),
        ):
            if sample is not None:
                sample_text = json.dumps(sample, indent=2, ensure_ascii=False)
                parts.append(f"{label}:\n```json\n{sample_text}\n```")
    parts.append(f"Write {wanted}. The admin asks:\n{ask.words.strip()}")
    return "\n\n".join(parts)


def build_messages(ask: AssistAsk, secrets: Iterable[str] = ()) -> list[dict[str, str]]:
    """The chat messages for the model: the sandbox, the scripts, the admin's words (and
    the samples when the admin said so), with every known secret taken out."""
    secrets = list(secrets)
    return [
        {"role": "system", "content": without_secrets(_system_message(), secrets)},
        {"role": "user", "content": without_secrets(_user_message(ask), secrets)},
    ]


def _sent_back_message(problems: dict[str, list[Problem]]) -> str:
    lines = ["Your draft does not compile in the sandbox:"]
    for direction, found in problems.items():
        lines += [f"- the {direction} script, {problem}" for problem in found]
    lines.append("Answer again in the same JSON format, with the corrected complete scripts.")
    return "\n".join(lines)


# --- reading an answer -----------------------------------------------------------------------

_FENCE = re.compile(r"```(?:[a-zA-Z]+)?\s*\n(.*?)```", re.DOTALL)


def _json_object(text: str) -> dict | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(text[start : end + 1])
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_answer(text: str, directions: tuple[str, ...]) -> tuple[dict[str, str], str]:
    """The scripts and the explanation in a model's answer; ModelError when it holds none.

    The answer should be the JSON object the prompt asks for; a lone fenced block of
    Python is taken too when one script was asked for (small models often answer so).
    """
    data = _json_object(text)
    scripts: dict[str, str] = {}
    explanation = ""
    if data is not None:
        for direction in directions:
            value = data.get(direction)
            if isinstance(value, str) and value.strip():
                scripts[direction] = value
        if isinstance(data.get("explanation"), str):
            explanation = data["explanation"].strip()[:1000]
    elif len(directions) == 1:
        blocks = [b for b in _FENCE.findall(text) if b.strip()]
        if len(blocks) == 1:
            scripts[directions[0]] = blocks[0]
    if not scripts:
        raise ModelError(
            "bad_answer",
            "The model answered, but not with a draft of the scripts asked for. Try again, "
            "perhaps in other words.",
        )
    for direction, script in scripts.items():
        if len(script) > SCRIPT_MAX_LENGTH:
            raise ModelError(
                "bad_answer", f"The model's {direction} script is longer than a script may be."
            )
        scripts[direction] = script.replace("\r\n", "\n").replace("\r", "\n").rstrip() + "\n"
    return scripts, explanation


def compile_problems(scripts: dict[str, str]) -> dict[str, list[Problem]]:
    return {d: found for d, text in scripts.items() if (found := check_script(text, d))}


# --- drafting --------------------------------------------------------------------------------


def draft_rules(ask: AssistAsk, user) -> Draft:
    """Ask the model for a draft, check it, run it on the samples.

    Raises AssistRefused (not set up, over the limit) and ModelError (the model could not
    be asked, or answered nonsense).
    """
    endpoint = model_endpoint()
    if endpoint is None:
        raise AssistRefused(SETUP_HELP)
    take_allowance(user)
    time_limit = settings.EXALATE_AI_TIMEOUT
    deadline = time.monotonic() + time_limit
    messages = build_messages(ask, known_secrets())
    answer = chat(endpoint, messages, deadline=deadline, time_limit=time_limit)
    scripts, explanation = parse_answer(answer, ask.directions)
    draft = Draft(ask=ask, scripts=scripts, explanation=explanation)
    draft.problems = compile_problems(scripts)
    if draft.problems:
        draft = _sent_back(draft, endpoint, messages, answer, deadline, time_limit)
    draft.run = run_samples(
        draft.text("outgoing") if not check_script(draft.text("outgoing"), "outgoing") else None,
        draft.text("incoming") if not check_script(draft.text("incoming"), "incoming") else None,
        ask.sample_request,
        ask.sample_replica,
        first_sync=ask.first_sync,
    )
    return draft


def _sent_back(
    draft: Draft,
    endpoint: ModelEndpoint,
    messages: list[dict[str, str]],
    answer: str,
    deadline: float,
    time_limit: float,
) -> Draft:
    """Send a draft that does not compile back once with its errors; the answer replaces
    it when it reads as a draft, else the first draft is shown with its errors."""
    again = [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": _sent_back_message(draft.problems)},
    ]
    sent_back = draft.problems
    try:
        second = chat(endpoint, again, deadline=deadline, time_limit=time_limit)
        scripts, explanation = parse_answer(second, draft.ask.directions)
    except ModelError:
        draft.sent_back = sent_back
        return draft
    fixed = Draft(
        ask=draft.ask,
        scripts=scripts,
        explanation=explanation or draft.explanation,
        sent_back=sent_back,
    )
    fixed.problems = compile_problems(scripts)
    return fixed


def assist_note(note: str, prompt: str) -> str:
    """The note of a version saved from an AI draft: it says so, with the admin's words."""
    words = " ".join(prompt.split())
    note = note.strip()
    head = f"{note} (AI Assist: " if note else "AI Assist: "
    tail = ")" if note else ""
    room = NOTE_MAX_LENGTH - len(head) - len(tail)
    if room < 10:
        return note[:NOTE_MAX_LENGTH]
    if len(words) > room:
        words = words[: room - 1].rstrip() + "…"
    return f"{head}{words}{tail}"
