"""The API's OpenAPI description (/api/schema/, /api/docs/), built by drf-spectacular only
when it is asked for.

drf-spectacular's schema machinery brings django.test, unittest and more along (about
70 modules): a web worker that never serves the schema should not carry them. So the
API modules annotate their views with this module's `extend_schema`, which records the
annotation, and drf-spectacular's own `extend_schema` is applied to them, and each app's
`schema.py` (its drf-spectacular extensions) is imported, when a schema is first
generated: by the schema view, `manage.py spectacular` or the deploy check, all of which
use SPECTACULAR_SETTINGS["DEFAULT_GENERATOR_CLASS"] (exalate_site/schema_generator.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from django.utils.module_loading import autodiscover_modules
from django.views.decorators.csrf import csrf_exempt

_pending: list[tuple[Any, dict[str, Any]]] = []
_loaded = False
_lock = threading.RLock()


def extend_schema(**annotation: Any) -> Callable:
    """drf-spectacular's `extend_schema` (same arguments), applied once a schema is
    generated; a view imported after that is annotated at once."""

    def decorator(view):
        with _lock:
            if _loaded:
                return _annotate(view, annotation)
            _pending.append((view, annotation))
        return view

    return decorator


def load_schema_annotations() -> None:
    """Import every app's schema extensions and annotate the views: before the first
    schema is generated. The annotations change the views in place, in the order they
    were written (a method's before its class's, as with the decorators themselves)."""
    global _loaded
    with _lock:
        if _loaded:
            return
        autodiscover_modules("schema")
        for view, annotation in _pending:
            _annotate(view, annotation)
        _pending.clear()
        _loaded = True


def _annotate(view, annotation: dict[str, Any]):
    from drf_spectacular.utils import extend_schema as spectacular_extend_schema

    annotated = spectacular_extend_schema(**annotation)(view)
    # drf-spectacular annotates functions and classes in place, as this module relies on.
    assert annotated is view, f"drf-spectacular replaced {view!r}"
    return annotated


def _served_on_demand(view_name: str, **initkwargs: Any) -> Callable:
    """drf-spectacular's view `view_name`, imported on its first request."""
    view = None

    @csrf_exempt
    def serve(request, *args, **kwargs):
        nonlocal view
        if view is None:
            from drf_spectacular import views

            view = getattr(views, view_name).as_view(**initkwargs)
        return view(request, *args, **kwargs)

    return serve


schema_view = _served_on_demand("SpectacularAPIView")
docs_view = _served_on_demand("SpectacularSwaggerView", url_name="api-schema")
