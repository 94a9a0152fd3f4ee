"""The staff dashboard: server-rendered pages on the same FastAPI app as the webhooks."""
