"""export_rules and import_rules: a connection's rules through a file or stdout."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from sync.models import SyncRuleVersion
from sync.services.transfer import FORMAT
from tests.sync.test_transfer import IN, OUT, exported, make, make_source


@pytest.fixture
def source(db):
    return make_source()


@pytest.fixture
def target(db):
    return make("Acme to Initech")


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_export_rules_writes_json_to_stdout(source):
    out, _ = run("export_rules", str(source.pk))
    data = json.loads(out)
    assert data["format"] == FORMAT and data["outgoing"] == OUT
    assert len(data["triggers"]) == 2


def test_export_rules_writes_a_file_with_output(source, tmp_path):
    path = tmp_path / "rules.json"
    out, err = run("export_rules", str(source.pk), "--output", str(path))
    assert out == "" and "written to" in err
    assert json.loads(path.read_text())["incoming"] == IN


def test_export_then_import_moves_the_rules(source, target, tmp_path):
    path = tmp_path / "rules.json"
    run("export_rules", str(source.pk), "-o", str(path))
    out, _ = run("import_rules", str(target.pk), str(path))
    assert "The scripts become version 1." in out
    assert "Trigger added: impact=top" in out
    assert "Imported as version 1." in out
    version = target.rule_versions.get()
    assert (version.outgoing, version.incoming) == (OUT, IN)
    assert target.triggers.count() == 2


def test_import_rules_dry_run_stores_nothing(source, target, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(exported(source))
    out, _ = run("import_rules", str(target.pk), str(path), "--dry-run")
    assert "Dry run: nothing was imported." in out
    assert not target.rule_versions.exists() and not target.triggers.exists()


def test_import_rules_refuses_a_script_that_does_not_compile_with_its_line(
    source, target, tmp_path
):
    path = tmp_path / "rules.json"
    path.write_text(exported(source, outgoing="replica.summary = (\n"))
    with pytest.raises(CommandError, match="the outgoing script, Line 1"):
        run("import_rules", str(target.pk), str(path))
    assert not SyncRuleVersion.objects.filter(connection=target).exists()
    assert not target.triggers.exists()


def test_import_rules_says_when_the_file_cannot_be_read(target, tmp_path):
    with pytest.raises(CommandError, match="Could not read"):
        run("import_rules", str(target.pk), str(tmp_path / "missing.json"))


def test_the_commands_name_a_connection_that_is_not_here(db, tmp_path):
    with pytest.raises(CommandError, match="No connection"):
        run("export_rules", "not-an-id")
    with pytest.raises(CommandError, match="No connection"):
        run("import_rules", "00000000-0000-0000-0000-000000000000", str(tmp_path / "x"))
