"""Workflows on connections: `actions` (what admins do), `outbox` (telling peers),
`peer` (calling the peer: Test connection)."""
