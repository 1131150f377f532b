"""The product's settings with one addition for the accept benchmark: the URLs of
bench/urls.py (the product's, plus a baseline endpoint). Never used by the product."""

from exalate_site.settings import *  # noqa: F403 - the product's settings, unchanged

ROOT_URLCONF = "bench.urls"
