"""Persistence adapter: the only package that imports sqlmodel/sqlalchemy."""
