"""The Flask application factory: `gunicorn "web:create_app()"`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from mlsys.settings import get_settings
from web import (
    auth,
    docs,
    errors,
    evaluations,
    guards,
    health,
    jobs,
    limits,
    metrics,
    monitoring,
    openapi,
    policy,
    predict,
    registry,
    schedules,
)
from web.backends import Backends
from web.ui import create_blueprint as dashboard

BLUEPRINTS = (
    predict.bp,
    jobs.bp,
    registry.bp,
    schedules.bp,
    monitoring.bp,
    evaluations.bp,
    health.bp,
    metrics.bp,
    openapi.bp,
    docs.bp,
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the API.

    Args:
        config: Flask config overrides. `SETTINGS` (a mlsys Settings; default: from the
            environment), and for tests `JOB_STORE`, `WAREHOUSE`, `MODEL_STORE`, `CELERY_APP`.

    Returns:
        The WSGI app.
    """
    _configure_logging()
    # No static folder: the only static files are the docs assets, served (and documented)
    # by the docs blueprint.
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = errors.MAX_BODY_BYTES
    app.config.update(config or {})
    settings = app.config.setdefault("SETTINGS", get_settings())
    app.json.sort_keys = False
    app.extensions["mlsys"] = Backends.from_config(app.config, settings)

    metrics.init_app(app)  # first: times and counts every request, refused ones included
    guards.init_app(app)  # Host and cross-site checks, before anything reads a token
    auth.init_app(app)
    errors.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    app.register_blueprint(dashboard())  # /ui: pages for people, signed in by session cookie
    policy.check_app(app)  # fails at startup if a route declares no policy
    limits.init_app(app)  # after auth (budgets are per principal) and the views it wraps
    openapi.documented_routes(app)  # fails at startup if a route has no @doc
    return app


def _configure_logging() -> None:
    # gunicorn configures only its own loggers; without a root handler the access lines and
    # warnings of this app would be dropped. Leave any configuration that exists alone.
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
