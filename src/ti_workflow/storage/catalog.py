"""Definitions and campaigns in the database: every version ever used is kept."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from ti_workflow.definitions.campaigns import parse_campaign
from ti_workflow.definitions.loader import content_version, parse_definition, parse_yaml_text
from ti_workflow.domain.campaign import Campaign
from ti_workflow.domain.definition import Definition
from ti_workflow.storage.tables import CampaignRow, DefinitionRow

definitions_t = DefinitionRow.__table__  # type: ignore[attr-defined]
campaigns_t = CampaignRow.__table__  # type: ignore[attr-defined]


def store_definition(conn: Connection, definition: Definition, text: str, at: datetime) -> bool:
    """Store a definition version unless it is already there; True if it was new."""
    present = conn.execute(
        select(definitions_t.c.version).where(definitions_t.c.version == definition.version)
    ).first()
    if present:
        return False
    document = parse_yaml_text(text)
    conn.execute(
        insert(definitions_t),
        {
            "version": definition.version,
            "workflow": definition.name,
            "source": definition.source,
            "document": json.loads(json.dumps(document, default=str)),
            "text": text,
            "stored_at": at,
        },
    )
    return True


def store_campaign(conn: Connection, campaign: Campaign, text: str, at: datetime) -> None:
    version = content_version(parse_yaml_text(text))
    values = {
        "name": campaign.name,
        "timezone": campaign.timezone,
        "opens_on": campaign.opens_on,
        "closes_on": campaign.closes_on,
        "version": version,
        "text": text,
        "stored_at": at,
    }
    row = conn.execute(select(campaigns_t.c.version).where(campaigns_t.c.id == campaign.id)).first()
    if row is None:
        conn.execute(insert(campaigns_t), {"id": campaign.id, **values})
    elif row.version != version:
        conn.execute(update(campaigns_t).where(campaigns_t.c.id == campaign.id).values(**values))


def past_definitions(conn: Connection, skip: set[str]) -> dict[str, Definition]:
    """Every stored version but those in ``skip`` (the current files, already parsed)."""
    rows = conn.execute(
        select(definitions_t.c.version, definitions_t.c.source, definitions_t.c.text).where(
            definitions_t.c.version.not_in(skip)
        )
    ).all()
    return {
        row.version: parse_definition(parse_yaml_text(row.text), f"{row.source}@{row.version[:12]}")
        for row in rows
    }


def stored_campaigns(conn: Connection) -> list[Campaign]:
    return [
        parse_campaign(parse_yaml_text(row.text), f"campaign {row.id}")
        for row in conn.execute(select(campaigns_t)).all()
    ]
