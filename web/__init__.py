"""The mlsys HTTP API (Flask): `from web import create_app`; `gunicorn "web:create_app()"`."""

from web.app import create_app

__all__ = ["create_app"]
