"""The handshake: `initiating` (the checks the wizard and the command share, then the
connection), `issuing` (initiate, issue, regenerate, revoke), `redeeming` (source side of
an acceptance), `accepting` (destination side), `messages` (failures in words)."""
