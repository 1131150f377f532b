"""This node: its General Settings (identity, licence) and the modes it can take part in."""

from __future__ import annotations

import threading
import uuid
from datetime import date, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, models
from django.utils import timezone

from nodes.fields import EncryptedTextField, NodeURLField, ShortNameField, holds_secret
from nodes.validators import validate_rsa_public_key, validate_xurrent_account

XURRENT_DEFAULT_API_URL = "https://api.xurrent.com/v1"


class _RequestCache(threading.local):
    """The General Settings read during the current request, in this thread."""

    active = False
    node: GeneralSettings | None = None


_this_request = _RequestCache()


def start_request(**kwargs) -> None:
    _this_request.active, _this_request.node = True, None


def settings_read_in_this_request() -> GeneralSettings | None:
    """The General Settings this thread's current request has read already, if any."""
    return _this_request.node if _this_request.active else None


def share_request_settings(node: GeneralSettings | None) -> None:
    """Start a request in this thread that uses `node` (read by another thread for the
    same piece of work) rather than read the settings again."""
    start_request()
    _this_request.node = node


def end_request(**kwargs) -> None:
    _this_request.active, _this_request.node = False, None


class Mode(models.TextChoices):
    BASIC = "basic", "Basic"
    SCRIPT = "script", "Script"


class License(models.TextChoices):
    EVALUATION = "evaluation", "Evaluation"
    PAID = "paid", "Paid"
    FREE = "free", "Free"


class GeneralSettings(models.Model):
    """This node's identity, licence and Xurrent account: one row per node, seeded from the
    environment."""

    SINGLETON_PK = 1

    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    node_url = NodeURLField(
        "Exalate URL",
        help_text="The public base address other nodes use to reach this node.",
    )
    short_name = ShortNameField(
        "default local short name",
        help_text="Offered as this instance's short name when a connection is set up.",
    )
    platform = models.CharField(max_length=20, default="xurrent", editable=False)
    public = models.BooleanField(
        "instance is public",
        default=True,
        help_text="Only a public instance can initiate a connection: "
        "the other side must be able to reach it to accept.",
    )
    license = models.CharField(max_length=20, choices=License.choices)
    evaluation_ends_on = models.DateField(
        null=True, blank=True, help_text="After this day an evaluation counts as Free."
    )
    xurrent_api_url = NodeURLField(
        "Xurrent API URL",
        default=XURRENT_DEFAULT_API_URL,
        help_text="Where this node calls its Xurrent account: https://api.xurrent.com/v1, "
        "a regional address such as https://api.uk.xurrent.com/v1, or a simulator.",
    )
    xurrent_account = models.CharField(
        "Xurrent account id",
        max_length=100,
        blank=True,
        validators=[validate_xurrent_account],
        help_text="The account this node synchronises, sent with every call (X-Xurrent-Account).",
    )
    # Read back only to call Xurrent; never shown, logged or put in a form's initial data.
    xurrent_api_token = EncryptedTextField("Xurrent API token")
    xurrent_webhook_key = models.TextField(
        "webhook policy public key",
        blank=True,
        validators=[validate_rsa_public_key],
        help_text="When Xurrent signs its webhooks (a webhook policy), paste the policy's "
        "public key (PEM): unsigned or badly signed webhooks are then refused. Empty: "
        "webhooks are taken unsigned.",
    )
    # Basic mode has fixed rules, but Xurrent needs a team for each request it creates.
    basic_team = models.CharField(
        "Team for new requests (Basic mode)",
        max_length=255,
        default="Service Desk",
        help_text="The team of this Xurrent account that requests coming from the other side "
        "of a Basic mode connection are created in: its name, or its id (a number). Script "
        "mode connections set entity.team in their incoming script instead.",
    )
    # AI Assist of the sync rules page: an OpenAI-compatible chat completions API.
    ai_url = NodeURLField(
        "AI endpoint URL",
        blank=True,
        help_text="The base URL of an OpenAI-compatible API (its /chat/completions is "
        "called), e.g. https://api.openai.com/v1, or http://127.0.0.1:11434/v1 for a local "
        "Ollama (which needs EXALATE_ALLOW_PRIVATE_NETWORKS). Empty: AI Assist is off.",
    )
    ai_model = models.CharField(
        "AI model",
        max_length=200,
        blank=True,
        help_text="The model name the endpoint knows, e.g. gpt-4o-mini or qwen2.5-coder.",
    )
    # Read back only to call the model; never shown, logged or put in a prompt or a form.
    ai_api_key = EncryptedTextField("AI API key")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "general settings"
        verbose_name_plural = "general settings"

    def __str__(self) -> str:
        return f"General Settings of {self.short_name}"

    def save(self, *args, **kwargs) -> None:
        self.pk = self.SINGLETON_PK
        super().save(*args, **kwargs)
        _this_request.node = None  # the rest of this request reads the saved values

    def delete(self, *args, **kwargs):
        raise ValueError("The General Settings of a node cannot be deleted.")

    @classmethod
    def load(cls) -> GeneralSettings:
        """The node's settings, created from the environment the first time they're read.

        Inside a request they are read from the database once and then kept for the rest
        of it (pages, services and templates all ask); a command or the worker reads
        them afresh each time, so an admin's change reaches a long-running process.
        """
        cached = _this_request.node
        if cached is not None:
            return cached
        try:
            # get(), not filter().first(): first() orders by the key, which costs more
            # to compile than the read itself.
            obj = cls.objects.get(pk=cls.SINGLETON_PK)
        except cls.DoesNotExist:
            obj = cls._seed()
        if _this_request.active:
            _this_request.node = obj
        return obj

    @classmethod
    def webhook_policy(cls) -> tuple[str, str]:
        """(Xurrent account, webhook policy key): all a webhook call needs. Xurrent calls
        once per change, so these two columns are all that is read: the whole row (some 30
        fields, the secrets among them) took half of a webhook's time."""
        if _this_request.node is not None:
            return _this_request.node.xurrent_account, _this_request.node.xurrent_webhook_key
        # In SQL: building the same query with the ORM took three times as long as
        # running it. Names come from the model; the key is a parameter.
        meta, quote = cls._meta, connection.ops.quote_name
        fields = ("xurrent_account", "xurrent_webhook_key")
        columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {quote(meta.db_table)} "  # noqa: S608
                f"WHERE {quote(meta.pk.column)} = %s",
                [cls.SINGLETON_PK],
            )
            row = cursor.fetchone()
        if row is None:
            node = cls.load()
            return node.xurrent_account, node.xurrent_webhook_key
        return row[0], row[1]

    @classmethod
    def _seed(cls) -> GeneralSettings:
        license = settings.EXALATE_LICENSE
        ends = (
            date.today() + timedelta(days=settings.EXALATE_EVALUATION_DAYS)
            if license == License.EVALUATION
            else None
        )
        obj, _ = cls.objects.get_or_create(
            pk=cls.SINGLETON_PK,
            defaults={
                "node_url": settings.EXALATE_NODE_URL,
                "short_name": default_short_name(settings.EXALATE_NODE_URL),
                "public": settings.EXALATE_PUBLIC,
                "license": license,
                "evaluation_ends_on": ends,
                **xurrent_account_from_env(),
                **ai_assist_from_env(),
            },
        )
        return obj

    @property
    def has_xurrent_token(self) -> bool:
        return holds_secret(self, "xurrent_api_token")

    @property
    def xurrent_configured(self) -> bool:
        """Whether there is an account and a token to call Xurrent with."""
        return bool(self.xurrent_account) and self.has_xurrent_token

    def set_xurrent_token(self, token: str) -> None:
        """Replace the API token (an empty one removes it). Saved with the rest."""
        self.xurrent_api_token = token.strip()

    def fill_xurrent_account_from_env(self) -> bool:
        """Take the Xurrent account from the environment when this node has none yet.

        A node whose account an admin has set up (an account id or a token) keeps it: the
        environment only seeds. True when something was filled in and saved.
        """
        if self.xurrent_account or self.has_xurrent_token:
            return False
        values = xurrent_account_from_env()
        if not values.get("xurrent_account") and not values.get("xurrent_api_token"):
            return False
        return self._take(values)

    @property
    def has_ai_api_key(self) -> bool:
        return holds_secret(self, "ai_api_key")

    @property
    def ai_configured(self) -> bool:
        """Whether AI Assist has an endpoint and a model (a key is optional: a local
        model may need none)."""
        return bool(self.ai_url and self.ai_model)

    def set_ai_api_key(self, key: str) -> None:
        """Replace the AI API key (an empty one removes it). Saved with the rest."""
        self.ai_api_key = key.strip()

    def fill_ai_assist_from_env(self) -> bool:
        """Take AI Assist's endpoint from the environment when this node has none yet; one
        an admin set up is kept. True when something was filled in and saved."""
        if self.ai_url or self.ai_model or self.has_ai_api_key:
            return False
        values = ai_assist_from_env()
        if not values:
            return False
        return self._take(values)

    def _take(self, values: dict[str, str]) -> bool:
        """Set these fields from the environment and save (the end of a fill)."""
        for name, value in values.items():
            setattr(self, name, value)
        self.save()
        return True

    @property
    def effective_license(self) -> str:
        if (
            self.license == License.EVALUATION
            and self.evaluation_ends_on is not None
            and self.evaluation_ends_on < timezone.localdate()
        ):
            return License.FREE
        return self.license

    def available_modes(self) -> list[str]:
        """The configuration modes this node may take part in right now."""
        if self.effective_license == License.FREE:
            return [Mode.BASIC.value]
        return [Mode.BASIC.value, Mode.SCRIPT.value]

    @property
    def base_url(self) -> str:
        return self.node_url.rstrip("/")


def xurrent_account_from_env() -> dict[str, str]:
    """The Xurrent account the environment names (XURRENT_API_URL, XURRENT_ACCOUNT,
    XURRENT_API_TOKEN), as General Settings field values; unset ones are left out."""
    values = {
        "xurrent_api_url": settings.XURRENT_API_URL,
        "xurrent_account": settings.XURRENT_ACCOUNT,
        "xurrent_api_token": settings.XURRENT_API_TOKEN,
    }
    return {name: value for name, value in values.items() if value}


def ai_assist_from_env() -> dict[str, str]:
    """AI Assist's endpoint as the environment names it (EXALATE_AI_URL, EXALATE_AI_MODEL,
    EXALATE_AI_API_KEY), as General Settings field values; unset ones are left out."""
    values = {
        "ai_url": settings.EXALATE_AI_URL,
        "ai_model": settings.EXALATE_AI_MODEL,
        "ai_api_key": settings.EXALATE_AI_API_KEY,
    }
    return {name: value for name, value in values.items() if value}


def default_short_name(url: str) -> str:
    """A readable short name from a URL's host: "desk.acme.com" gives "desk"."""
    host = urlsplit(url).hostname or "xurrent"
    first = host.split(".")[0] if not host.replace(".", "").isdigit() else "xurrent"
    return first[:40] or "xurrent"
