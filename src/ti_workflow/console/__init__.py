"""The web console: server-rendered pages (DSFR look, htmx) over the engine, in French."""
