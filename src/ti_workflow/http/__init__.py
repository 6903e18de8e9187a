"""The operator HTTP API (FastAPI): the only package that imports fastapi.

``app`` builds the application; ``accounts`` (users, tokens), ``tables`` and
``idempotency`` are plain SQLAlchemy and are also used by the CLI.
"""
