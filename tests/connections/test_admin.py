"""The admin as the operations view."""

import secrets
import uuid

import pytest
from django.contrib.admin import site
from django.contrib.admin.models import LogEntry
from django.core.cache import cache
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from connections.models import Connection, ConnectionEvent, PeerNotification
from invitations.services.issuing import issue_invitation
from sync.models import SyncRuleVersion
from tests.connections.peers import make_paired

CHANGELIST = "/admin/connections/connection/"
STATUSES = ["active", "deactivated", "error", "pending"]


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


def make_many(count: int, *, start: int = 0) -> None:
    """Connections in every status, half with an untold notification (in bulk: 500 is many)."""
    rows = [
        Connection(
            name=f"Connection {number}",
            mode="script",
            role="source",
            local_short_name="acme",
            remote_short_name=f"peer{number}",
            remote_url=f"https://peer{number}.example",
            remote_uid=uuid.uuid4(),
            remote_connection_id=str(uuid.uuid4()),
            status=STATUSES[number % 4],
            remote_status=["", "active", "deactivated"][number % 3],
            shared_secret=secrets.token_urlsafe(32),
        )
        for number in range(start, start + count)
    ]
    Connection.objects.bulk_create(rows)
    PeerNotification.objects.bulk_create(
        PeerNotification(
            connection=row,
            connection_name=row.name,
            status="deactivated",
            changed_at=row.created_at,
            remote_url=row.remote_url,
            remote_uid=row.remote_uid,
            remote_connection_id=row.remote_connection_id,
            signing_key=row.shared_secret,
        )
        for row in rows[::2]
    )


def run_action(client, action, connections):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [str(c.pk) for c in connections]},
        follow=True,
    )


def messages_of(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_the_changelist_shows_statuses_badges_and_the_remote_side(admin_client, node):
    make_many(4)
    html = admin_client.get(CHANGELIST).content.decode()
    assert '<span class="badge status-error">Error</span>' in html
    assert '<span class="badge status-deactivated">Deactivated</span>' in html
    assert "https://peer3.example" in html
    assert "css/operations.css" in html
    assert "peer told" in html.lower()


def test_the_changelist_runs_the_same_number_of_queries_for_5_and_500_connections(
    admin_client, node, django_assert_num_queries
):
    make_many(5)
    admin_client.get(CHANGELIST)  # warm the session and content-type caches
    with CaptureQueriesContext(db_connection) as small:
        assert admin_client.get(CHANGELIST).status_code == 200
    make_many(495, start=5)
    with django_assert_num_queries(len(small.captured_queries)):
        response = admin_client.get(CHANGELIST)
    assert "500 connections" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status__exact=error", {"Connection 2"}),
        ("remote_status=deactivated", {"Connection 2"}),
        ("remote_status=none", {"Connection 0", "Connection 3"}),
        ("mode__exact=basic", set()),
        ("role__exact=source", {f"Connection {n}" for n in range(4)}),
        ("q=peer1.example", {"Connection 1"}),
    ],
)
def test_the_changelist_filters_and_searches(admin_client, node, query, expected):
    make_many(4)
    response = admin_client.get(f"{CHANGELIST}?{query}")
    assert response.status_code == 200
    shown = {c.name for c in response.context["cl"].result_list}
    assert shown == expected


def test_the_changelist_has_a_date_hierarchy(admin_client, node):
    make_many(2)
    response = admin_client.get(CHANGELIST)
    assert response.context["cl"].date_hierarchy == "created_at"
    assert "?created_at__year=" in response.content.decode()


def test_the_change_page_keeps_the_handshake_fields_read_only_and_the_secret_out(
    admin_client, node
):
    connection = make_paired()
    SyncRuleVersion.objects.create(connection=connection, number=1, outgoing="replica.summary")
    invitation, _code = issue_invitation(connection)
    response = admin_client.get(f"{CHANGELIST}{connection.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields == {"name", "description", "local_short_name", "remote_short_name"}
    assert connection.shared_secret not in html
    assert invitation.token_hash not in html
    assert "token" not in html.lower().replace("csrfmiddlewaretoken", "")
    assert "replica.summary" in html  # rule versions inline
    assert "Invitation issued" in html  # events inline


@pytest.mark.parametrize("field", ["local_short_name", "remote_short_name"])
def test_the_change_page_refuses_a_short_name_the_wizard_would_refuse(
    admin_client, node, rf, admin_user, field
):
    connection = make_paired()
    request = rf.get("/")
    request.user = admin_user
    form_class = site._registry[Connection].get_form(request, connection)
    data = {
        "name": connection.name,
        "description": "",
        "local_short_name": "acme",
        "remote_short_name": "globex",
        field: "<b>x</b>",
    }
    form = form_class(data, instance=connection)
    assert not form.is_valid()
    assert form.errors[field] == ["Use only letters, digits, spaces and the characters . - _"]
    assert form_class({**data, field: " ok-name "}, instance=connection).is_valid()


def test_staff_cannot_add_a_connection_from_a_blank_form(admin_client, node):
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_the_deactivate_action_records_the_staff_user(admin_client, admin_user, node):
    active = make_paired(remote_url="")
    pending = make_paired(name="Waiting", status="pending")
    response = run_action(admin_client, "deactivate_selected", [active, pending])
    active.refresh_from_db()
    pending.refresh_from_db()
    assert active.status == "deactivated"
    assert pending.status == "pending"
    event = active.events.get(kind="deactivated")
    assert event.actor_user == admin_user
    text = messages_of(response)
    assert "1 connection deactivated" in text
    assert "Waiting: Only an active connection" in text
    assert "private network" in text


def test_deleting_a_connection_in_the_admin_tells_the_peer_and_records_the_staff_user(
    admin_client, admin_user, node
):
    # The outbound guard refuses this address, so the notice waits in the outbox.
    connection = make_paired(remote_url="http://127.0.0.1:9")
    response = admin_client.post(
        f"/admin/connections/connection/{connection.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not Connection.objects.filter(pk=connection.pk).exists()
    event = ConnectionEvent.objects.get(connection_name=connection.name, kind="deleted")
    assert event.actor_user == admin_user
    notice = PeerNotification.objects.get(connection_name=connection.name)
    assert notice.status == "deleted"
    assert notice.state == "pending"
    assert "Peer not told yet" in messages_of(response)


def test_deleting_in_the_admin_a_connection_deleted_meanwhile_says_so(rf, admin_user, node):
    from django.contrib.messages.storage.fallback import FallbackStorage

    connection = make_paired(remote_url="")
    stale = Connection.objects.get(pk=connection.pk)
    Connection.objects.filter(pk=connection.pk).delete()
    request = rf.post("/admin/")
    request.user = admin_user
    request.session = {}
    request._messages = FallbackStorage(request)
    site._registry[Connection].delete_model(request, stale)
    [message] = [str(m) for m in request._messages]
    assert message.startswith("The connection \u201cAcme to Globex\u201d no longer exists")
    assert not ConnectionEvent.objects.filter(kind="deleted").exists()


def test_the_bulk_delete_action_goes_through_the_same_service(admin_client, admin_user, node):
    connections = [make_paired(name=f"Gone {n}", remote_url="") for n in range(2)]
    response = admin_client.post(
        CHANGELIST,
        {
            "action": "delete_selected",
            "_selected_action": [str(c.pk) for c in connections],
            "post": "yes",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert not Connection.objects.filter(name__startswith="Gone").exists()
    events = ConnectionEvent.objects.filter(connection_name__startswith="Gone", kind="deleted")
    assert [e.actor_user for e in events] == [admin_user, admin_user]


def test_the_activate_action_records_the_staff_user(admin_client, admin_user, node):
    connection = make_paired(remote_url="", status="deactivated")
    response = run_action(admin_client, "activate_selected", [connection])
    connection.refresh_from_db()
    assert connection.status == "active"
    assert connection.events.get(kind="activated").actor_user == admin_user
    assert "1 connection activated" in messages_of(response)


def test_the_revoke_action_revokes_pending_invitations_and_records_it(
    admin_client, admin_user, node
):
    pending = make_paired(status="pending", shared_secret="", remote_connection_id="")
    invitation, _code = issue_invitation(pending)
    response = run_action(admin_client, "revoke_pending_invitations", [pending])
    invitation.refresh_from_db()
    assert invitation.state == "revoked"
    event = pending.events.filter(kind="invitation_revoked").get()
    assert event.actor_user == admin_user
    assert "1 pending invitation revoked" in messages_of(response)


def test_actions_need_the_change_permission(client, node, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        "watcher", "", "pw-watcher-123456", is_staff=True
    )
    viewer.user_permissions.add(Permission.objects.get(codename="view_connection"))
    client.force_login(viewer)
    connection = make_paired(remote_url="")
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "deactivate_selected" not in response.content.decode()
    run_action(client, "deactivate_selected", [connection])
    connection.refresh_from_db()
    assert connection.status == "active"


def test_the_admin_index_counts_connections_by_status(admin_client, node):
    make_many(7)
    html = admin_client.get("/admin/").content.decode()
    assert 'id="connection-counts"' in html
    counts = {
        status: html.split(f'<li data-status="{status}">')[1].split('class="count">')[1][:2]
        for status in STATUSES
    }
    assert counts == {"active": "2<", "deactivated": "2<", "error": "2<", "pending": "1<"}


def test_the_event_admin_is_read_only_and_filters(admin_client, node):
    connection = make_paired()
    connection.deactivate()
    connection.delete()
    listing = admin_client.get("/admin/connections/connectionevent/?kind__exact=deactivated")
    assert [e.kind for e in listing.context["cl"].result_list] == ["deactivated"]
    orphaned = admin_client.get("/admin/connections/connectionevent/?connection__isempty=1")
    assert orphaned.context["cl"].result_count == 1
    event = ConnectionEvent.objects.get()
    assert admin_client.get("/admin/connections/connectionevent/add/").status_code == 403
    change = admin_client.get(f"/admin/connections/connectionevent/{event.pk}/change/")
    assert change.status_code == 200
    assert not change.context["has_change_permission"]
    assert 'name="_save"' not in change.content.decode()
    assert (
        admin_client.post(f"/admin/connections/connectionevent/{event.pk}/delete/").status_code
        == 403
    )


def test_the_invitation_admin_never_shows_the_token_hash(admin_client, node):
    connection = make_paired(status="pending", shared_secret="", remote_connection_id="")
    invitation, _code = issue_invitation(connection)
    listing = admin_client.get("/admin/invitations/invitation/?state=valid")
    assert listing.context["cl"].result_count == 1
    change = admin_client.get(f"/admin/invitations/invitation/{invitation.pk}/change/")
    assert invitation.token_hash not in change.content.decode()
    assert invitation.token_hash not in listing.content.decode()


def test_the_outbox_admin_never_shows_the_signing_key(admin_client, node):
    connection = make_paired()
    notification = PeerNotification.for_connection(connection, "deactivated")
    listing = admin_client.get("/admin/connections/peernotification/?state__exact=pending")
    assert listing.context["cl"].result_count == 1
    change = admin_client.get(f"/admin/connections/peernotification/{notification.pk}/change/")
    assert change.status_code == 200
    assert connection.shared_secret not in change.content.decode()
    page = admin_client.get(f"{CHANGELIST}{connection.pk}/change/").content.decode()
    assert connection.shared_secret not in page


def test_staff_can_send_an_untold_notification_now(admin_client, node, settings):
    from tests.connections.peers import FakePeer

    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True
    peer = FakePeer()
    connection = make_paired(remote_url=peer.url)
    notification = PeerNotification.for_connection(connection, "deactivated")
    peer.start()
    try:
        response = admin_client.post(
            "/admin/connections/peernotification/",
            {"action": "retry_now", "_selected_action": [notification.pk]},
            follow=True,
        )
    finally:
        peer.stop()
    assert "Delivered 1, still not delivered 0" in messages_of(response)
    notification.refresh_from_db()
    assert notification.state == "delivered"


def test_sending_a_notification_now_records_the_staff_user(admin_client, admin_user, node):
    # The outbound guard refuses this address: the attempt fails, and the record says so.
    connection = make_paired(remote_url="http://127.0.0.1:9")
    notification = PeerNotification.for_connection(connection, "deactivated")
    admin_client.post(
        "/admin/connections/peernotification/",
        {"action": "retry_now", "_selected_action": [notification.pk]},
    )
    entry = LogEntry.objects.get(object_id=str(notification.pk))
    assert entry.user == admin_user
    assert entry.get_change_message().startswith("Sent now by staff: not delivered yet (")
    history = admin_client.get(f"/admin/connections/peernotification/{notification.pk}/history/")
    assert "Sent now by staff" in history.content.decode()


def general_settings_form(node, **changes) -> dict:
    data = {
        "node_url": node.node_url,
        "short_name": node.short_name,
        "public": "on" if node.public else "",
        "license": node.license,
        "evaluation_ends_on": node.evaluation_ends_on or "",
        # The Xurrent account is on the same page (the token only as "set a new one").
        "xurrent_api_url": node.xurrent_api_url,
        "xurrent_account": node.xurrent_account,
        "xurrent_webhook_key": node.xurrent_webhook_key,
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("short_name", "<b>acme</b>", "Use only letters, digits, spaces and the characters . - _"),
        ("short_name", "acme!", "Use only letters, digits, spaces and the characters . - _"),
        ("node_url", "ftp://node.example", "The URL must start with http:// or https://."),
        ("node_url", "https://user:pw@node.example", "must not contain a user name or password"),
        ("node_url", "https://node.example/?a=1", "without ? or # parts"),
    ],
)
def test_general_settings_refuse_bad_input_with_a_clear_message(
    admin_client, node, field, value, message
):
    url = f"/admin/nodes/generalsettings/{node.pk}/change/"
    response = admin_client.post(url, general_settings_form(node, **{field: value}))
    assert response.status_code == 200
    assert message in response.content.decode()
    before = getattr(node, field)
    node.refresh_from_db()
    assert getattr(node, field) == before


def test_general_settings_store_the_node_url_in_its_normal_form(admin_client, node):
    url = f"/admin/nodes/generalsettings/{node.pk}/change/"
    response = admin_client.post(
        url, general_settings_form(node, node_url=" HTTPS://Node.Example/ ", short_name="acme-2")
    )
    assert response.status_code == 302
    node.refresh_from_db()
    assert node.node_url == "https://node.example"
    assert node.short_name == "acme-2"


def test_general_settings_cannot_be_added_twice_nor_deleted_in_the_admin(admin_client, node):
    base = "/admin/nodes/generalsettings/"
    assert admin_client.get(f"{base}add/").status_code == 403
    assert admin_client.post(f"{base}add/", general_settings_form(node)).status_code == 403
    assert admin_client.post(f"{base}{node.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(node).objects.count() == 1


def test_searching_a_connection_id_uses_the_key_not_every_text_column(admin_client, node):
    make_many(4)
    wanted = Connection.objects.get(name="Connection 2")
    other = Connection.objects.get(name="Connection 3")
    for term in (str(wanted.pk), f"  {str(wanted.pk).upper()} ", other.remote_connection_id):
        with CaptureQueriesContext(db_connection) as queries:
            response = admin_client.get(CHANGELIST, {"q": term})
        shown = {c.name for c in response.context["cl"].result_list}
        assert shown == (
            {"Connection 3"} if term == other.remote_connection_id else {"Connection 2"}
        )
        searches = [
            q["sql"] for q in queries.captured_queries if "connections_connection" in q["sql"]
        ]
        assert not any("LIKE" in sql.upper() for sql in searches), searches
