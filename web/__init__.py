"""The office's web console: server-rendered pages for staff (FastAPI + Jinja2 + htmx, every asset served here)."""
