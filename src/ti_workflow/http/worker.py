"""What a ``serve`` worker process imports: the application and nothing else.

uvicorn starts each worker with ``multiprocessing`` "spawn", which first re-imports the
parent's ``__main__``: for ``ti-workflow serve`` that was the whole CLI (typer, rich,
every command), a second of CPU or more before the worker answers its health ping.
``serve`` names this module as ``__main__`` for the workers it spawns.
"""

from __future__ import annotations

from ti_workflow.http.app import create_app_from_env as create_app

__all__ = ["create_app"]
