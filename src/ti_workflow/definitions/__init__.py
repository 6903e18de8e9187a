"""Loading and checking the declarative files: workflows and campaigns."""
