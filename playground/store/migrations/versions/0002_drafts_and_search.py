"""Editor drafts on sessions; a plain-text search column on runs, filled for existing runs.

Revision ID: 0002
Revises: 0001
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("draft", sa.JSON(), nullable=False, server_default="{}"))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    from playground.store.records import search_text_of

    conn = op.get_bind()
    for run_id, inputs, outputs in conn.execute(sa.text("SELECT id, inputs, outputs FROM runs")).all():
        text = search_text_of(json.loads(inputs or "{}"), json.loads(outputs or "{}"))
        conn.execute(sa.text("UPDATE runs SET search_text = :t WHERE id = :i"), {"t": text, "i": run_id})


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("search_text")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("draft")
