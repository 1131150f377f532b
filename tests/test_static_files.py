"""Static files as production serves them: hashed names from collectstatic's manifest,
gzip copies, and a year of browser caching (tests run with DEBUG off)."""

import gzip
import re
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage

ROOT = Path(__file__).resolve().parent.parent
HASHED_CSS = re.compile(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"')
STATIC_TAG = re.compile(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""")


def test_production_uses_the_compressed_manifest_storage():
    assert staticfiles_storage.__class__.__name__ == "CompressedManifestStaticFilesStorage"
    assert settings.WHITENOISE_USE_FINDERS is False


def test_a_page_names_its_stylesheet_with_a_content_hash(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert HASHED_CSS.search(page), page[:600]


def test_a_hashed_file_is_served_gzipped_and_cached_for_a_year(client, db):
    url = HASHED_CSS.search(client.get("/accounts/login/").content.decode()).group(1)
    response = client.get(url, headers={"accept-encoding": "gzip, deflate"})
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    assert "max-age=315360000" in response["Cache-Control"]
    body = b"".join(response.streaming_content)
    original = Path(finders.find("css/app.css")).read_bytes()
    assert gzip.decompress(body) == original
    assert len(body) < len(original) / 2


def test_a_client_without_gzip_gets_the_file_as_it_is(client, db):
    url = HASHED_CSS.search(client.get("/accounts/login/").content.decode()).group(1)
    response = client.get(url)
    assert response.status_code == 200
    assert "Content-Encoding" not in response
    assert b"".join(response.streaming_content) == Path(finders.find("css/app.css")).read_bytes()


def test_every_static_file_a_template_names_was_collected():
    # A name missing from the manifest is an error 500 on that page in production.
    named = {
        name
        for template in (ROOT / "templates").rglob("*.html")
        for name in STATIC_TAG.findall(template.read_text())
    }
    assert "css/app.css" in named
    for name in sorted(named):
        assert re.search(r"\.[0-9a-f]{12}\.", staticfiles_storage.url(name)), name
