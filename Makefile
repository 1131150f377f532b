# The two commands a newcomer needs: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1
PYTEST_ARGS ?=

.PHONY: run serve test lint format demo bench install install-dev browser editor clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Stamp files: pip runs again only when a requirements file changes.
$(VENV)/.deps: requirements.txt | $(PY)
	$(PIP) install -q -r requirements.txt
	@touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(PY)
	$(PIP) install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.deps

install: $(VENV)/.deps
install-dev: $(VENV)/.deps-dev

# This node's Xurrent account, by default a simulator (xurrent_sim) started beside the node,
# with its requests kept in var/. Its token is made once. Setting XURRENT_API_URL (and
# XURRENT_ACCOUNT, XURRENT_API_TOKEN) before the first start uses a real account instead;
# afterwards the account is changed on the Xurrent page (/settings/xurrent/).
SIM_TOKEN = $$(cat var/xurrent-sim-token)
sim-token = @mkdir -p var; test -s var/xurrent-sim-token || \
  $(PY) -c 'import secrets; print(secrets.token_urlsafe(24))' > var/xurrent-sim-token
# $(call SIM,port,account,node url,data file): one simulator, webhooks to that node.
SIM = $(PY) -m xurrent_sim --quiet --port $(1) --account $(2) --token "$(SIM_TOKEN)" \
  --data var/$(4) --webhook $(3)/api/v1/xurrent/webhook/
SIM_ENV = XURRENT_API_URL=$${XURRENT_API_URL:-http://127.0.0.1:$(1)/v1} \
  XURRENT_ACCOUNT=$${XURRENT_ACCOUNT:-$(2)} XURRENT_API_TOKEN=$${XURRENT_API_TOKEN:-$(SIM_TOKEN)}
RUN_ENV = DEBUG=1 $(call SIM_ENV,8100,local)

# The server, the worker beside it (peer notifications, sync), and the Xurrent simulator.
# When one of them stops (Ctrl-C, or a port is taken), the others are stopped too.
run: $(VENV)/.deps
	$(sim-token)
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py setup_node
	@echo "This node: http://127.0.0.1:8000   its Xurrent (simulator): http://127.0.0.1:8100/"
	@trap 'kill $$w $$s $$n 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM; \
	  $(call SIM,8100,local,http://127.0.0.1:8000,xurrent-sim.json) & s=$$!; \
	  $(RUN_ENV) $(PY) manage.py run_worker & w=$$!; \
	  $(RUN_ENV) $(PY) manage.py runserver 127.0.0.1:8000 & n=$$!; \
	  while kill -0 $$w 2>/dev/null && kill -0 $$s 2>/dev/null && kill -0 $$n 2>/dev/null; \
	  do sleep 1; done; echo "A process stopped (see above); stopping the others." >&2; exit 1

# The same node as in production: gunicorn (gunicorn.conf.py) and the worker, DEBUG off,
# static files collected into var/static (hashed names, gzip copies).
# A secret key is made once in var/; the node is served over plain http on 127.0.0.1.
SERVE_ENV = SECRET_KEY="$$(cat var/serve-secret-key)" DEBUG=0 SECURE_SSL_REDIRECT=false \
  SESSION_COOKIE_SECURE=false CSRF_COOKIE_SECURE=false SECURE_HSTS_SECONDS=0 \
  EXALATE_ALLOW_PRIVATE_NETWORKS=true
serve: $(VENV)/.deps
	@mkdir -p var; test -s var/serve-secret-key || $(PY) -c 'import secrets; print(secrets.token_urlsafe(50))' > var/serve-secret-key
	$(SERVE_ENV) $(PY) manage.py migrate --noinput
	$(SERVE_ENV) $(PY) manage.py setup_node
	$(SERVE_ENV) $(PY) manage.py collectstatic --noinput -v 0
	@trap 'kill $$w $$g 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM; \
	  $(SERVE_ENV) $(PY) manage.py run_worker & w=$$!; \
	  $(SERVE_ENV) $(VENV)/bin/gunicorn -c gunicorn.conf.py exalate_site.wsgi & g=$$!; \
	  while kill -0 $$w 2>/dev/null && kill -0 $$g 2>/dev/null; do sleep 1; done; exit 1

# Browser tests drive Debian's Chromium; Playwright never downloads its own browser.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium for the browser tests..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "The browser tests need Chromium at /usr/bin/chromium: run 'sudo apt-get install chromium'." >&2; \
	    exit 1; \
	  fi; }

test: $(VENV)/.deps-dev browser
	$(PY) -m pytest $(PYTEST_ARGS)

# Speed and memory as ratios against baselines measured in the same run, printed as a
# table (a few minutes; the served cases need PostgreSQL, else they are listed as not run).
# BENCH_ARGS=--strict fails when a target is missed; --quick is rougher. Without Chromium
# (not installable here) the editor case is listed as not run, with the reason; in CI
# (CI set) a missing Chromium fails.
BENCH_ARGS ?=
bench: $(VENV)/.deps-dev
	@$(MAKE) --no-print-directory browser || test -z "$$CI"
	$(PY) bench/run.py $(BENCH_ARGS)

# The sync rules editor (CodeMirror 6): editor/ holds its npm packages, pinned by
# package-lock.json, and the source; the bundle is committed as static/js/editor.bundle.js,
# so `make run` needs no Node. Run this after changing editor/ (needs Node and npm).
editor:
	cd editor && npm ci --ignore-scripts --no-audit --no-fund && npm run build
	@wc -c static/js/editor.bundle.js | awk '{printf "editor.bundle.js: %d bytes", $$1}'
	@gzip -9c static/js/editor.bundle.js | wc -c | awk '{printf ", %d gzipped\n", $$1}'

lint: $(VENV)/.deps-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

format: $(VENV)/.deps-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two nodes side by side, to try both sides of a connection alone (README: "Try both
# sides"). B is served as "localhost": browsers keep cookies per host, not per port, so
# logging in to one node does not log you out of the other.
DEMO_A := http://127.0.0.1:8000
DEMO_B := http://localhost:8001
DEMO_SIM_A := 8101
DEMO_SIM_B := 8102
# $(call DEMO_ENV,a|b,node url,simulator port): a node's database and its Xurrent simulator.
DEMO_ENV = DEBUG=1 DATABASE_URL=sqlite:///$(CURDIR)/var/demo-$(1).sqlite3 EXALATE_NODE_URL=$(2) \
  XURRENT_API_URL=http://127.0.0.1:$(3)/v1 XURRENT_ACCOUNT=demo-$(1) XURRENT_API_TOKEN="$(SIM_TOKEN)"
ENV_A = $(call DEMO_ENV,a,$(DEMO_A),$(DEMO_SIM_A))
ENV_B = $(call DEMO_ENV,b,$(DEMO_B),$(DEMO_SIM_B))
DEMO_LOGIN = from secrets import token_urlsafe; from django.contrib.auth import get_user_model; \
  u = get_user_model().objects.get(username="admin"); p = token_urlsafe(9); u.set_password(p); \
  u.save(); print(f"  node $(1): $(2)  login: admin  password: {p}  its Xurrent: $(3)")

demo: $(VENV)/.deps
	$(sim-token)
	@$(ENV_A) $(PY) manage.py migrate --noinput -v 0
	@$(ENV_B) $(PY) manage.py migrate --noinput -v 0
	@$(ENV_A) $(PY) manage.py setup_node >/dev/null
	@$(ENV_B) $(PY) manage.py setup_node >/dev/null
	@echo "Two nodes (their own databases: var/demo-a.sqlite3, var/demo-b.sqlite3), each with"
	@echo "its own Xurrent simulator (requests kept in var/demo-sim-a.json, var/demo-sim-b.json):"
	@$(ENV_A) $(PY) manage.py shell -v 0 -c '$(call DEMO_LOGIN,A,$(DEMO_A),http://127.0.0.1:$(DEMO_SIM_A)/)'
	@$(ENV_B) $(PY) manage.py shell -v 0 -c '$(call DEMO_LOGIN,B,$(DEMO_B),http://127.0.0.1:$(DEMO_SIM_B)/)'
	@echo "Initiate a connection on A towards $(DEMO_B), accept its code on B. Ctrl-C stops all."
	@# When one process stops (Ctrl-C, or its port is taken) the others are stopped too: a
	@# demo with one node or simulator gone looks alive but cannot sync.
	@trap 'kill $$a $$b $$wa $$wb $$sa $$sb 2>/dev/null; wait' EXIT; trap 'exit 0' INT TERM; \
	  $(call SIM,$(DEMO_SIM_A),demo-a,$(DEMO_A),demo-sim-a.json) & sa=$$!; \
	  $(call SIM,$(DEMO_SIM_B),demo-b,$(DEMO_B),demo-sim-b.json) & sb=$$!; \
	  $(ENV_A) $(PY) manage.py run_worker >/dev/null & wa=$$!; \
	  $(ENV_B) $(PY) manage.py run_worker >/dev/null & wb=$$!; \
	  $(ENV_A) $(PY) manage.py runserver 127.0.0.1:8000 --noreload & a=$$!; \
	  $(ENV_B) $(PY) manage.py runserver 127.0.0.1:8001 --noreload & b=$$!; \
	  while kill -0 $$a 2>/dev/null && kill -0 $$b 2>/dev/null && kill -0 $$sa 2>/dev/null \
	    && kill -0 $$sb 2>/dev/null; do sleep 1; done; \
	  echo "A demo process stopped (see above); stopping the others." >&2; exit 1

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
