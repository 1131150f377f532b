"""Loaded by pytest before Django (`-p tests.env_defaults`): test-friendly settings.

Tests run with production settings (DEBUG off) except where noted, so a missing
SECRET_KEY gets a throwaway one and HTTPS redirects are off for the test client.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("EXALATE_NODE_URL", "http://testserver")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("EXALATE_ALLOW_PRIVATE_NETWORKS", "false")

if "STATIC_ROOT" not in os.environ:
    # Production's static storage names files from its manifest, so the files are collected
    # once per run (tests/conftest.py), here; the live nodes the tests start serve them too.
    _static_root = tempfile.mkdtemp(prefix="exalate-test-static-")
    os.environ["STATIC_ROOT"] = _static_root
    atexit.register(shutil.rmtree, _static_root, ignore_errors=True)
