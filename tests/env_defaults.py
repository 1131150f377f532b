"""Loaded by pytest before Django (`-p tests.env_defaults`): test-friendly settings.

Tests run with production settings (DEBUG off) except where noted, so a missing
SECRET_KEY gets a throwaway one and HTTPS redirects are off for the test client.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("EXALATE_NODE_URL", "http://testserver")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("EXALATE_ALLOW_PRIVATE_NETWORKS", "false")
