"""SQLAlchemy 2 typed tables. ``Mapped[X | None]`` decides nullability; constraint names are explicit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str] = mapped_column(String(20), default="prompt")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Each tab's unsaved editor contents, keyed by mode; saved debounced so a crash loses ~2 s of typing.
    draft: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    deleted_at: Mapped[datetime | None]  # soft delete, so "Delete" can be undone

    runs: Mapped[list[RunRow]] = relationship(back_populates="session", cascade="all, delete-orphan",
                                              passive_deletes=True, order_by="RunRow.id")


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_session_id_id", "session_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    mode: Mapped[str] = mapped_column(String(20))
    model_id: Mapped[str] = mapped_column(String(500))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20))  # done | cancelled | failed
    error: Mapped[str | None] = mapped_column(Text)
    # Plain text of inputs and outputs, for search without parsing JSON in SQL.
    search_text: Mapped[str] = mapped_column(Text, default="")

    session: Mapped[SessionRow] = relationship(back_populates="runs")
