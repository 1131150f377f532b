from unittest import mock
from wsgiref.util import setup_testing_defaults

from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.db import connection as db_connection
from django.db.utils import OperationalError
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from connections.models import Connection
from exalate_site.middleware import HeadWithoutBodyMiddleware


def test_healthz_answers_ok_when_the_database_answers(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_healthz_answers_503_when_the_database_does_not(client, db):
    with mock.patch("django.db.backends.utils.CursorWrapper.execute") as execute:
        execute.side_effect = OperationalError("down")
        response = client.get("/healthz")
    assert response.status_code == 503


def test_anonymous_users_are_sent_to_login(client, db):
    for url in ["/connections/", "/connections/initiate/", "/connections/accept/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/?next=")


def test_root_redirects_to_connections(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response.url == "/connections/"


def test_login_page_uses_the_project_template(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Exalate" in response.content
    assert b'name="username"' in response.content


def test_logout_is_a_post(admin_client):
    assert admin_client.get("/accounts/logout/").status_code == 405
    response = admin_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert admin_client.get("/connections/").status_code == 302


def test_connections_page_explains_what_a_connection_is_when_empty(admin_client):
    response = admin_client.get("/connections/")
    content = response.content.decode()
    assert "No connections yet" in content
    assert "Initiate connection" in content
    assert "Accept invitation" in content


def test_connections_page_rows_carry_id_and_status_markers(admin_client):
    c = Connection.objects.create(
        name="A to B", mode="script", role="source", local_short_name="a", remote_short_name="b"
    )
    content = admin_client.get("/connections/").content.decode()
    assert f'data-connection-id="{c.id}" data-status="pending"' in content
    assert "private network" in content


def test_the_connections_page_and_its_polled_rows_cost_the_same_queries_for_any_number(
    admin_client, django_assert_num_queries
):
    def add(n: int) -> None:
        for i in range(n):
            Connection.objects.create(
                name=f"C{Connection.objects.count()}-{i}",
                mode="script",
                role="source",
                local_short_name="a",
                remote_short_name="b",
            )

    add(1)
    # Counted at once: each request clears the connection's query log when it starts.
    with CaptureQueriesContext(db_connection) as one:
        admin_client.get("/connections/")
    page_queries = len(one.captured_queries)
    with CaptureQueriesContext(db_connection) as one_rows:
        admin_client.get("/connections/?fragment=rows")
    rows_queries = len(one_rows.captured_queries)
    assert page_queries > 0 and rows_queries > 0
    add(5)
    with django_assert_num_queries(page_queries):
        page = admin_client.get("/connections/")
    with django_assert_num_queries(rows_queries):
        rows = admin_client.get("/connections/?fragment=rows")
    assert page.content.decode().count("data-connection-id=") == 6
    assert rows.content.decode().count("data-connection-id=") == 6


def test_viewer_without_add_permission_sees_no_initiate_button(viewer_client):
    response = viewer_client.get("/connections/")
    assert response.status_code == 200
    assert "Initiate connection" not in response.content.decode()


def test_admin_pages_load_for_staff(admin_client, node):
    c = Connection.objects.create(
        name="A to B", mode="script", role="source", local_short_name="a", remote_short_name="b"
    )
    c.activate()
    for url in [
        "/admin/",
        "/admin/connections/connection/",
        f"/admin/connections/connection/{c.pk}/change/",
        "/admin/connections/connectionevent/",
        "/admin/invitations/invitation/",
        f"/admin/nodes/generalsettings/{node.pk}/change/",
    ]:
        assert admin_client.get(url).status_code == 200, url


def test_general_settings_admin_goes_straight_to_the_one_row(admin_client, node):
    response = admin_client.get("/admin/nodes/generalsettings/")
    assert response.status_code == 302
    assert response.url.endswith(f"/generalsettings/{node.pk}/change/")
    assert admin_client.get("/admin/nodes/generalsettings/add/").status_code == 403


def test_connection_mode_is_read_only_in_the_admin(admin_client):
    c = Connection.objects.create(
        name="A to B", mode="script", role="source", local_short_name="a", remote_short_name="b"
    )
    content = admin_client.get(f"/admin/connections/connection/{c.pk}/change/").content.decode()
    assert 'name="mode"' not in content
    assert 'name="name"' in content


def test_api_docs_are_served_offline(admin_client):
    response = admin_client.get("/api/docs/")
    assert response.status_code == 200
    assert "cdn" not in response.content.decode().lower()
    schema = admin_client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/instance/" in schema.content


def test_a_form_sent_without_a_valid_csrf_token_gets_the_projects_page(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    response = browser.post("/connections/accept/", {"code": "anything"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "This form could not be accepted" in html
    assert "Nothing was changed." in html
    assert "Exalate <span>for Xurrent</span>" in html
    assert "More information is available with DEBUG=True" not in html


def call_wsgi(method: str, path: str) -> tuple[str, dict, bytes]:
    """One request through the real WSGI application, as gunicorn makes it (the test client
    strips HEAD bodies itself, so it cannot show what a server would send)."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "HTTP_HOST": "localhost"}
    setup_testing_defaults(environ)
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer["status"], answer["headers"] = status, dict(headers)

    # Like the test client: a finished request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(get_wsgi_application()(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer["status"], answer["headers"], body


def test_a_head_request_gets_the_headers_of_get_and_no_body(db):
    status, headers, body = call_wsgi("GET", "/api/v1/no-such-endpoint/")
    assert status.startswith("404") and body
    head_status, head_headers, head_body = call_wsgi("HEAD", "/api/v1/no-such-endpoint/")
    assert head_status == status
    assert head_body == b""
    assert head_headers["Content-Length"] == str(len(body))
    assert head_headers["Content-Type"] == headers["Content-Type"]


def test_a_head_request_for_a_streamed_answer_gets_no_body(rf):
    middleware = HeadWithoutBodyMiddleware(lambda request: StreamingHttpResponse([b"a", b"b"]))
    response = middleware(rf.head("/static/app.css"))
    assert b"".join(response.streaming_content) == b""


def _stdout_handler():
    import logging

    return next(h for h in logging.getLogger().handlers if h.get_name() == "stdout")


def test_a_refused_permission_is_logged_in_one_line_without_a_traceback(viewer_client):
    import io

    handler = _stdout_handler()
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        response = viewer_client.get("/connections/initiate/")
    finally:
        handler.setStream(previous)
    assert response.status_code == 403
    logged = stream.getvalue()
    assert "Forbidden" in logged
    assert "Traceback" not in logged


def test_server_errors_keep_their_traceback_in_the_log():
    import logging
    import sys

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "django.request", logging.ERROR, __file__, 1, "fail", None, sys.exc_info()
        )
    record.status_code = 500
    assert _stdout_handler().filter(record)
    assert record.exc_info is not None
