"""The handshake: `issuing` (initiate, issue, regenerate, revoke), `redeeming` (source
side of an acceptance), `accepting` (destination side), `messages` (failures in words)."""
