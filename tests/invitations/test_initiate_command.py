"""`python manage.py initiate_connection`: same checks as the wizard, code on the last line."""

import io
import socket

import pytest
from django import db
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError

from connections.models import Connection
from invitations import code as invitation_code
from invitations.models import Invitation, hash_token
from tests.http_servers import answering, discovery_answer

REAL_GETADDRINFO = socket.getaddrinfo


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("initiate_connection", *args, stdout=out)
    return out.getvalue().splitlines()


def failure(*args: str) -> str:
    with pytest.raises(CommandError) as error:
        run(*args)
    return str(error.value)


def run_from_shell(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """As `python manage.py initiate_connection …` runs it: exit status, stdout, stderr."""
    # A command run from the shell closes the database connections when it ends; the
    # test's own transaction lives on one of them.
    monkeypatch.setattr(db.connections, "close_all", lambda: None)
    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", "initiate_connection", *args]).execute()
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_the_command_prints_the_invitation_code_as_its_last_line(node, private_allowed):
    with answering(200, discovery_answer(short_name="globex")) as server:
        lines = run(
            "--destination-url",
            server.url + "/",
            "--mode",
            "script",
            "--local-short-name",
            "acme",
            "--remote-short-name",
            "globex",
            "--name",
            "Acme to Globex",
            "--description",
            "From a script",
        )
    code = invitation_code.decode(lines[-1])
    connection = Connection.objects.get()
    invitation = connection.invitations.get()
    assert code.connection_id == str(connection.id)
    assert code.mode == "script"
    assert hash_token(code.token) == invitation.token_hash
    assert connection.status == "pending" and connection.role == "source"
    assert connection.remote_url == server.url
    assert connection.description == "From a script"
    assert invitation.shown_at is not None
    assert server.requests == ["/api/v1/instance/"]


def test_the_command_works_without_a_url(node):
    lines = run(
        "--no-url",
        "--mode",
        "basic",
        "--local-short-name",
        "acme",
        "--remote-short-name",
        "hidden",
        "--name",
        "Private",
    )
    code = invitation_code.decode(lines[-1])
    assert code.destination_uid is None
    assert Connection.objects.get().remote_url == ""


def test_the_short_names_default_to_the_settings_and_the_destination(node, private_allowed):
    node.short_name = "acme"
    node.save()
    with answering(200, discovery_answer(short_name="globex")) as server:
        run("--destination-url", server.url, "--mode", "basic", "--name", "Defaults")
    connection = Connection.objects.get()
    assert (connection.local_short_name, connection.remote_short_name) == ("acme", "globex")


@pytest.fixture
def private_allowed(settings):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "basic", "--remote-short-name", "b", "--name", "N"], "--destination-url"),
        (
            [
                "--destination-url",
                "https://x.example",
                "--no-url",
                "--mode",
                "basic",
                "--remote-short-name",
                "b",
                "--name",
                "N",
            ],
            "not both",
        ),
        (
            ["--destination-url", "x.example", "--mode", "basic", "--name", "N"],
            "http:// or https://",
        ),
        (["--no-url", "--remote-short-name", "b", "--name", "N"], "--mode is required"),
        (["--no-url", "--mode", "visual", "--remote-short-name", "b", "--name", "N"], "--mode"),
        (["--no-url", "--mode", "basic", "--name", "N"], "--remote-short-name: Enter a short"),
        (
            ["--no-url", "--mode", "basic", "--remote-short-name", "a/b", "--name", "N"],
            "--remote-short-name: Use only letters",
        ),
        (["--no-url", "--mode", "basic", "--remote-short-name", "b"], "--name: Enter a name"),
        (
            [
                "--no-url",
                "--mode",
                "basic",
                "--remote-short-name",
                "b",
                "--name",
                "N",
                "--description",
                "d" * 1001,
            ],
            "--description: Ensure this value has at most 1000",
        ),
    ],
)
def test_bad_arguments_fail_with_a_clear_message_and_create_nothing(node, args, message):
    with pytest.raises(CommandError) as error:
        run(*args)
    assert message in str(error.value)
    assert not Connection.objects.exists()


def test_a_duplicate_name_is_refused(node):
    run("--no-url", "--mode", "basic", "--remote-short-name", "b", "--name", "Twice")
    with pytest.raises(CommandError) as error:
        run("--no-url", "--mode", "basic", "--remote-short-name", "b", "--name", "TWICE")
    assert "--name: A connection named" in str(error.value)
    assert Connection.objects.count() == 1


def test_a_node_that_is_not_public_cannot_initiate(node):
    node.public = False
    node.save()
    with pytest.raises(CommandError) as error:
        run("--no-url", "--mode", "basic", "--remote-short-name", "b", "--name", "N")
    assert "not public" in str(error.value)
    assert not Connection.objects.exists()


def test_a_free_licence_cannot_initiate_in_script_mode(node):
    node.license = "free"
    node.save()
    with pytest.raises(CommandError) as error:
        run("--no-url", "--mode", "script", "--remote-short-name", "b", "--name", "N")
    assert "choose one of: basic" in str(error.value)
    assert "Free licence" in str(error.value)
    assert not Connection.objects.exists()


def test_a_destination_offering_only_basic_refuses_script(node, private_allowed):
    with answering(200, discovery_answer(modes=["basic"])) as server:
        message = failure("--destination-url", server.url, "--mode", "script", "--name", "N")
    assert "choose one of: basic" in message


def test_a_destination_failing_discovery_is_reported(node, private_allowed):
    with answering(500, b"oops", "text/plain") as server:
        message = failure("--destination-url", server.url, "--mode", "basic", "--name", "N")
    assert "server error (HTTP 500)" in message
    assert not Connection.objects.exists()


def test_the_guard_applies_to_the_command(node, settings, monkeypatch):
    settings.EXALATE_ALLOW_PRIVATE_NETWORKS = False

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "intranet.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.4.4.4", port))]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(CommandError) as error:
        run("--destination-url", "https://intranet.example", "--mode", "basic", "--name", "N")
    assert "private or local network address" in str(error.value)


def test_a_failure_exits_with_status_1_and_says_why_on_stderr(node, capsys, monkeypatch):
    status, out, err = run_from_shell(
        capsys, monkeypatch, "--no-url", "--mode", "basic", "--name", "N"
    )
    assert status == 1
    assert "--remote-short-name: Enter a short name" in err
    assert out == ""


def test_a_usage_error_also_exits_with_status_1(node, capsys, monkeypatch):
    status, _, err = run_from_shell(capsys, monkeypatch, "--no-url", "--colour", "blue")
    assert status == 1
    assert "unrecognized arguments: --colour" in err


def test_success_exits_with_status_0_and_the_code_last(node, capsys, monkeypatch):
    status, out, _ = run_from_shell(
        capsys,
        monkeypatch,
        "--no-url",
        "--mode",
        "basic",
        "--remote-short-name",
        "b",
        "--name",
        "Shell",
    )
    assert status == 0
    code = out.strip().splitlines()[-1]
    assert invitation_code.decode(code).name == "Shell"
    assert Invitation.objects.get().token_hash == hash_token(invitation_code.decode(code).token)


@pytest.mark.e2e
def test_the_command_against_a_live_node(live_nodes):
    a, b = live_nodes("a"), live_nodes("b", EXALATE_LICENSE="free")
    result = a.manage(
        "initiate_connection",
        "--destination-url",
        b.url,
        "--mode",
        "script",
        "--name",
        "X",
        check=False,
    )
    assert result.returncode == 1
    assert "choose one of: basic" in result.stderr
    result = a.manage(
        "initiate_connection",
        "--destination-url",
        b.url,
        "--mode",
        "basic",
        "--local-short-name",
        "a",
        "--name",
        "A to B",
    )
    code = invitation_code.decode(result.stdout.strip().splitlines()[-1])
    b_uid = b.shell(
        "from nodes.models import GeneralSettings as G; print(G.load().uid)"
    ).splitlines()[-1]
    assert code.destination_uid == b_uid
    assert code.source_url == a.url
