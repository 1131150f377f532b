"""The schema generator of the API description (SPECTACULAR_SETTINGS): drf-spectacular's,
with the views' annotations applied first (exalate_site/openapi.py says why they wait)."""

from drf_spectacular.generators import SchemaGenerator as SpectacularSchemaGenerator

from exalate_site.openapi import load_schema_annotations


class SchemaGenerator(SpectacularSchemaGenerator):
    def get_schema(self, request=None, public=False):
        load_schema_annotations()
        return super().get_schema(request=request, public=public)
