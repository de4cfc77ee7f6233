"""Sharded preprocessing, the QC table, the unreadable-share check and the merged cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from labelbias.data.cache import (
    check_unreadable_share,
    unreadable_images,
    merge_shards,
    open_cache,
    preprocess_shard,
    resolve_image_path,
    shard_rows,
)
from labelbias.data.cohort import CohortFilters, select_images
from labelbias.data.embed import read_embed_tables
from labelbias.errors import DataQualityError
from labelbias.data.imaging import PreprocessSettings

SETTINGS = PreprocessSettings(height=32, width=24)
VENDORS = {"HOLOGIC, Inc.": "HOLO", "GE MEDICAL SYSTEMS": "GEMS", "FUJIFILM Corporation": "FUJI"}


def test_shards_partition_the_images():
    parts = [shard_rows(10, s, 3) for s in range(3)]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    with pytest.raises(ValueError):
        shard_rows(10, 3, 3)


def test_resolve_embed_paths():
    assert str(resolve_image_path("/data/embed", "./images/cohort_1/1/2/3.dcm")) == "/data/embed/images/cohort_1/1/2/3.dcm"
    assert (
        str(resolve_image_path("/data", "/mnt/NAS2/mammo/anon_dicom/cohort_1/a.dcm", strip_prefix="/mnt/NAS2/mammo/"))
        == "/data/anon_dicom/cohort_1/a.dcm"
    )


@pytest.fixture
def fixture_images(embed_dir):
    tables = read_embed_tables(embed_dir / "tables" / "metadata.csv", embed_dir / "tables" / "clinical.csv")
    images, _ = select_images(tables, CohortFilters(vendors=VENDORS))
    return images


def _run_all_shards(images, root, n_shards=3):
    results = [preprocess_shard(images, root, "dicom", SETTINGS, s, n_shards) for s in range(n_shards)]
    return [r[0] for r in results], [r[1] for r in results]


def test_shards_merge_into_table_order_and_mmap(fixture_images, embed_dir, tmp_path):
    arrays, qcs = _run_all_shards(fixture_images, embed_dir)
    index, qc = merge_shards(fixture_images, arrays, qcs, tmp_path / "cache.npy")
    assert list(index["image_id"]) == list(fixture_images["image_id"])
    cache = open_cache(tmp_path / "cache.npy")
    assert isinstance(cache, np.memmap) and cache.shape == (16, 32, 24)
    # row i of the cache is image i: compare with a single-shard run
    single, single_qc, _ = preprocess_shard(fixture_images, embed_dir, "dicom", SETTINGS, 0, 1)
    np.testing.assert_array_equal(np.asarray(cache), single)
    assert (qc["status"] == "ok").all()
    # left breasts were flipped, right ones not
    flipped = qc.set_index("image_id")["flipped"]
    lat = fixture_images.set_index("image_id")["laterality"]
    assert (flipped[lat.index] == (lat == "L").astype(int)).all()


def test_corrupt_and_truncated_files_go_to_qc_with_their_paths(fixture_images, embed_dir, tmp_path):
    first = embed_dir / fixture_images.loc[0, "image_path"]
    second = embed_dir / fixture_images.loc[5, "image_path"]
    first.write_bytes(b"garbage")
    second.write_bytes(second.read_bytes()[:300])
    arrays, qcs = _run_all_shards(fixture_images, embed_dir)
    qc = pd.concat(qcs)
    bad = qc[qc["status"] == "unreadable"]
    assert set(bad["image_id"]) == {fixture_images.loc[0, "image_id"], fixture_images.loc[5, "image_id"]}
    assert set(bad["image_path"]) == {str(first), str(second)}
    # the path has its own column; the reason does not repeat it
    assert all(str(p) not in r and r for p, r in zip(bad["image_path"], bad["reason"], strict=True))
    index, _ = merge_shards(fixture_images, arrays, qcs, tmp_path / "cache.npy")
    assert len(index) == 14
    with pytest.raises(DataQualityError, match=r"2 of 16 images \(12\.5%\) are unreadable") as error:
        check_unreadable_share(qc, 0.05)
    assert str(first) in str(error.value) and str(second) in str(error.value)
    check_unreadable_share(qc, 0.2)  # within the allowed share: no error


def test_too_many_unreadable_images_names_five_once_each_and_where_the_rest_are():
    paths = [f"/data/images/{i:04d}.dcm" for i in range(40)]
    qc = pd.DataFrame(
        {
            "image_id": [f"id{i}" for i in range(40)],
            "image_path": paths,
            "status": ["unreadable" if i % 4 == 0 else "ok" for i in range(40)],
            "flipped": 0,
            "reason": ["cannot decode DICOM pixel data (InvalidDicomError: no preamble)" if i % 4 == 0 else "" for i in range(40)],
        }
    )
    listed = unreadable_images(pd.concat([qc, qc.iloc[:1]]))  # a repeated row is listed once
    assert list(listed.columns) == ["image_id", "image_path", "reason"]
    assert list(listed["image_path"]) == paths[::4]
    with pytest.raises(DataQualityError) as error:
        check_unreadable_share(qc, 0.1, full_list="logs/unreadable_images.tsv")
    message = str(error.value)
    assert message.startswith("10 of 40 images (25.0%) are unreadable, more than preprocess.max_unreadable_fraction = 10.0%")
    assert "The first 5:" in message and message.endswith("All 10 are listed in logs/unreadable_images.tsv.")
    for path in paths[:20:4]:
        assert message.count(path) == 1 and f"{path}: cannot decode DICOM pixel data" in message
    assert paths[20] not in message
