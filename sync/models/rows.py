"""Writing many rows of a work queue at once."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router
from django.db.models import Model


def update_rows(objects: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of each object to its row: `bulk_update`'s effect, as one plain
    `UPDATE … WHERE id = %s` per row sent together (executemany). Django's bulk_update
    builds a CASE expression per field and row, which costs more than the rows it saves;
    this is what a batch of the sync queue uses. Values are prepared as `save()` prepares
    them (None is SQL NULL)."""
    if not objects:
        return
    model = type(objects[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    # Only the model's own (quoted) table and column names are put in; values are parameters.
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    sql = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
        + [meta.pk.get_db_prep_save(obj.pk, connection)]
        for obj in objects
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
