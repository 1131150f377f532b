"""System checks for the node's dependencies (`manage.py check`, `migrate`, `runserver`)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.cache import caches
from django.core.checks import Error, Tags, Warning, register

PER_PROCESS_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "keeps its own count in each process",
    "django.core.cache.backends.dummy.DummyCache": "counts nothing",
}


@register(Tags.caches)
def check_cache_backends_load(app_configs, **kwargs):
    """A cache whose backend or client library cannot be loaded fails at the first login or
    accept (Django's Redis backend imports `redis` only when first used): say so at start."""
    errors = []
    for alias in settings.CACHES:
        try:
            backend = caches.create_connection(alias)
            # Django's Redis and memcached backends build their client lazily, and that is
            # where a missing library shows; building it does not connect yet.
            getattr(backend, "_cache", None)
        except Exception as error:  # noqa: BLE001 - any failure to load is the finding
            errors.append(
                Error(
                    f"The cache {alias!r} ({settings.CACHES[alias].get('BACKEND')}) cannot "
                    f"be loaded: {type(error).__name__}: {error}",
                    hint="Check CACHE_URL; a redis:// URL needs the 'redis' package "
                    "(pip install -r requirements.txt).",
                    id="exalate.E001",
                )
            )
    return errors


@register(Tags.caches, Tags.security)
def check_throttle_cache_is_shared(app_configs, **kwargs):
    """The accept throttle counts in the default cache. Per-process caches make every worker
    process (and server) count alone, so the limit is multiplied by their number."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PER_PROCESS_CACHES or not _looks_multi_process():
        return []
    return [
        Warning(
            f"The accept endpoint's throttle runs on {backend.rsplit('.', 1)[-1]}, which "
            f"{PER_PROCESS_CACHES[backend]}: with several worker processes or servers the "
            "limit does not hold.",
            hint="Set CACHE_URL to a shared Redis, e.g. redis://127.0.0.1:6379/0 "
            "(or WEB_CONCURRENCY=1 if this node really runs a single process).",
            id="exalate.W001",
        )
    ]


def _looks_multi_process() -> bool:
    # gunicorn takes its worker count from WEB_CONCURRENCY; without it, production
    # (DEBUG off) is assumed to run several.
    workers = os.environ.get("WEB_CONCURRENCY", "").strip()
    if workers.isdigit():
        return int(workers) > 1
    return not settings.DEBUG


@register(Tags.security)
def check_secret_keys_are_set(app_configs, **kwargs):
    """Without EXALATE_SECRET_KEYS, secrets at rest are encrypted with a key derived from
    SECRET_KEY: rotating SECRET_KEY (a routine step after a leak) would then make every
    stored secret unreadable, and the connections stop working."""
    if settings.EXALATE_SECRET_KEYS or settings.DEBUG:
        return []
    return [
        Warning(
            "EXALATE_SECRET_KEYS is not set: the secrets stored in the database are encrypted "
            "with a key derived from SECRET_KEY, and changing SECRET_KEY would make them "
            "unreadable.",
            hint="Set EXALATE_SECRET_KEYS to a Fernet key of its own, e.g. the output of "
            '`python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"`, restart, then run '
            "`python manage.py rotate_secret_keys` (until then the key derived from "
            "SECRET_KEY still opens what it encrypted).",
            id="exalate.W002",
        )
    ]
