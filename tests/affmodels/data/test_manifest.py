from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from affmodels.data import (
    AffectStream,
    ExportError,
    FormatVersionError,
    ShardError,
    load_manifest,
    loss_weights,
)
from tests.affmodels.data.exports import AU_NAMES, EXPRESSIONS, Export, write_export


def _copy(export: Export, tmp_path: Path) -> Path:
    return Path(shutil.copytree(export.root, tmp_path / "copy"))


def _set_version(root: Path, version: int) -> None:
    info = root / "meta" / "info.json"
    m = json.loads(info.read_text())
    m["format_version"] = version
    info.write_text(json.dumps(m))


def test_manifest_exposes_vocabularies_and_counts(export: Export) -> None:
    m = load_manifest(export.root)
    assert m.au_names == tuple(AU_NAMES) and m.expressions == tuple(EXPRESSIONS)
    assert (m.n_aus, m.n_classes, m.rows) == (3, 4, export.rows)
    assert m.counts["au"] == int(export.has["au"].sum())


@pytest.mark.parametrize("version, word", [(0, "older"), (2, "newer")])
def test_other_format_versions_are_refused(export: Export, tmp_path: Path, version: int, word: str) -> None:
    root = _copy(export, tmp_path)
    _set_version(root, version)
    with pytest.raises(FormatVersionError, match=f"version {version} is {word}"):
        AffectStream(root)


def test_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="not an export"):
        load_manifest(tmp_path)


def test_sha256_verification_names_the_corrupted_shard(export: Export, tmp_path: Path) -> None:
    root = _copy(export, tmp_path)
    shard = root / "data" / "shard-00001.parquet"
    blob = bytearray(shard.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size: only the hash can tell
    shard.write_bytes(bytes(blob))
    load_manifest(root)  # the size check alone passes
    with pytest.raises(ShardError, match=r"shard data/shard-00001\.parquet fails verification"):
        AffectStream(root, verify=True)
    AffectStream(export.root, verify=True)  # the intact export verifies


def test_truncated_and_missing_shards_fail_without_verify(export: Export, tmp_path: Path) -> None:
    root = _copy(export, tmp_path)
    shard = root / "data" / "shard-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ShardError, match=r"shard-00002\.parquet is \d+ bytes"):
        load_manifest(root)
    shard.unlink()
    with pytest.raises(ShardError, match=r"shard data/shard-00002\.parquet is missing"):
        load_manifest(root)


def test_loss_weights_follow_the_manifest(export: Export) -> None:
    m = load_manifest(export.root)
    pos_weight, class_weight = loss_weights(m)
    rates = json.loads((export.root / "meta" / "info.json").read_text())["au_positive_rates"]
    expected = torch.tensor([(1 - rates[a]) / rates[a] for a in AU_NAMES])
    assert pos_weight.shape == (3,) and torch.allclose(pos_weight, expected, rtol=1e-5)
    counts = m.class_counts.astype(float)
    assert class_weight.shape == (4,)
    # inverse frequency, normalised so the mean weight over the labelled frames is 1
    assert torch.allclose((class_weight.double() * torch.tensor(counts)).sum() / counts.sum(),
                          torch.tensor(1.0, dtype=torch.float64))
    assert class_weight.argmax() == counts.argmin()


def test_loss_weights_guard_missing_and_degenerate_rates(tmp_path: Path) -> None:
    e = write_export(tmp_path / "x", videos=1, frames=20, au_rate=0.0, expr_rate=0.0)
    pos_weight, class_weight = loss_weights(load_manifest(e.root))
    assert torch.equal(pos_weight, torch.ones(3)) and torch.equal(class_weight, torch.ones(4))
