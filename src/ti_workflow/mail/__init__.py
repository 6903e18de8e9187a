"""E-mail: directory of addresses, Jinja2 rendering, the outbox and the SMTP dispatcher."""
