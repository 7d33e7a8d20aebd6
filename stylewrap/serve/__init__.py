"""Serving a trained model: `deploy` (plan and start the backend's own OpenAI-compatible server),
`servers` (the records of running servers, start/stop/probe by PID), `chat` (the terminal chat
client) and `webapp` (the local chat web page)."""
