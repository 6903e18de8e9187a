"""The pure core: workflow definitions, business rules, events. No I/O here."""
