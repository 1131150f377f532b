"""This node's Xurrent account: the API client, the webhook receiver, "Check Xurrent"."""
