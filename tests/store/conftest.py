from __future__ import annotations

import pytest

from playground.store.db import open_database
from playground.store.repository import SessionStore


@pytest.fixture
def store(data_home):
    db = open_database()
    yield SessionStore(db)
    db.dispose()
