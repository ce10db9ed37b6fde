"""WSGI entry point for gunicorn (`assistant.wsgi:app`), imported in each worker after fork."""

from assistant.app import create_app

app = create_app()
