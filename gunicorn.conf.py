"""gunicorn settings of a node: `gunicorn -c gunicorn.conf.py exalate_site.wsgi` (make serve).

Each setting can be changed from the environment, as operators of Django apps expect.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
# The usual rule for sync workers: two per core, plus one.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Above the longest call a request may make to another node (nodes.client: 3 s to
# connect, 10 s for the whole answer), so a slow peer gives an answer, never a killed worker.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Access and error logs to stdout/stderr, where the process manager collects them.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
# Trust X-Forwarded-* only from the proxy in front (gunicorn's default: 127.0.0.1).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
