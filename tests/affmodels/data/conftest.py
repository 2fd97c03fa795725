from __future__ import annotations

import pytest

from tests.affmodels.data.exports import AFFDATA_WRITER, Export, write_export


@pytest.fixture(scope="session")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """240 rows: 6 videos x 40 frames, shards of 64 rows (the last 48), row groups of 16."""
    return write_export(tmp_path_factory.mktemp("export") / "train")


@pytest.fixture(scope="session")
def raw_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return write_export(tmp_path_factory.mktemp("raw") / "train", encoding="raw", videos=2,
                        frames=30, shard_size=25, row_group_size=10)


@pytest.fixture(scope="session")
def plain_export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    """The 240 rows of ``export``, written as affdata writes them (images uncompressed)."""
    return write_export(tmp_path_factory.mktemp("plain") / "train", writer=AFFDATA_WRITER)
