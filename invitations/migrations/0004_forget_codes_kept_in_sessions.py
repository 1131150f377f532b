# Invitation codes used to wait in the session until their page showed them; they are now
# shown in the answer that makes them. Take out what older versions left in sessions.

from importlib import import_module

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_SESSION_KEY = "exalate_fresh_invitation_codes"


def forget_codes_kept_in_sessions(apps, schema_editor):
    Session = apps.get_model("sessions", "Session")
    store = import_module(settings.SESSION_ENGINE).SessionStore
    live = Session.objects.filter(expire_date__gt=timezone.now())
    for key in live.values_list("session_key", flat=True).iterator():
        # Through the session engine, so that a cached copy is rewritten as well.
        session = store(session_key=key)
        if session.pop(OLD_SESSION_KEY, None) is not None:
            session.save()


class Migration(migrations.Migration):
    dependencies = [
        ("invitations", "0003_public_keys"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forget_codes_kept_in_sessions, migrations.RunPython.noop),
    ]
