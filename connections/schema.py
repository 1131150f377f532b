"""How the API documentation describes what drf-spectacular cannot see by itself. Imported
only when a schema is generated (exalate_site/openapi.py)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class NodeTokenScheme(OpenApiAuthenticationExtension):
    """How the API documentation describes the node token."""

    target_class = "connections.auth.NodeTokenAuthentication"
    name = "nodeToken"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "HS256 with the connection's shared secret; claims iss (sender uid), "
            "aud (receiver uid, a single string), conn (receiver's connection id), iat (at "
            "most 2 minutes old, at most 30 s in the future), exp (at most 60 s after iat) "
            "and a jti that is accepted only once.",
        }
