"""`vlkd data to-webdataset`: CSV -> shards -> read back with the `webdataset` dataset."""
from __future__ import annotations

import tarfile
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

import vlkd_core
from vlkd_cli.app import app

runner = CliRunner()


def make_csv(tmp_path: Path, n: int = 5) -> tuple[Path, list[str]]:
    """n good rows (jpg, png and a bmp that gets re-encoded), then a truncated jpg and a missing
    file on lines n+2 and n+3."""
    images = tmp_path / "images"
    images.mkdir()
    rows, captions = ["path\tcaption\tlabel"], []
    for i in range(n):
        ext = ["jpg", "png", "bmp"][i % 3]
        Image.new("RGB", (8 + i, 6), (40 * i, 100, 200 - 30 * i)).save(images / f"{i}.{ext}")
        captions.append(f"picture number {i}, with a comma")
        rows.append(f"{i}.{ext}\t{captions[-1]}\t{i % 2}")
    good = (images / "0.jpg").read_bytes()
    (images / "cut.jpg").write_bytes(good[: len(good) // 2])
    rows += ["cut.jpg\ta truncated one\t0", "nowhere.png\ta missing one\t1"]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path, captions


def convert(csv: Path, out: Path, *extra: str):
    return runner.invoke(app, ["data", "to-webdataset", str(csv), str(out), "--maxcount", "2",
                               "--image-key", "path", "--caption-key", "caption",
                               "--image-root", str(csv.parent / "images"), *extra])


def test_conversion_round_trips_and_reports_skipped_rows(tmp_path):
    csv, captions = make_csv(tmp_path)
    out = tmp_path / "shards"
    result = convert(csv, out, "--label-key", "label")
    assert result.exit_code == 0, result.output
    assert "wrote 5 of 7 samples in 3 shard(s); skipped 2" in result.stdout
    assert f"{csv}, line 7" in result.stderr and "cut.jpg" in result.stderr
    assert f"{csv}, line 8" in result.stderr and "nowhere.png" in result.stderr and "file not found" in result.stderr
    pattern = str(out / "shard-{000000..000002}.tar")
    assert pattern in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"shard-00000{i}.tar" for i in range(3)]
    with tarfile.open(out / "shard-000000.tar") as tar:  # jpg/png bytes kept, bmp re-encoded as png
        assert sorted(tar.getnames()) == ["000000000.cls", "000000000.jpg", "000000000.txt",
                                          "000000001.cls", "000000001.png", "000000001.txt"]
        assert tar.extractfile("000000000.jpg").read() == (tmp_path / "images" / "0.jpg").read_bytes()

    ds = vlkd_core.build_dataset("webdataset", path=pattern, shuffle=0)
    items = sorted(ds, key=lambda item: item["key"].split("/")[1])
    assert [it["text"] for it in items] == captions
    assert [it["label"] for it in items] == [i % 2 for i in range(5)]
    for i, it in enumerate(items):
        original = Image.open(next((tmp_path / "images").glob(f"{i}.*"))).convert("RGB")
        assert it["image"].size == original.size
        assert it["image"].tobytes() == original.tobytes()  # lossless: same pixels


def test_existing_shards_need_overwrite(tmp_path):
    csv, _ = make_csv(tmp_path, n=3)
    out = tmp_path / "shards"
    assert convert(csv, out).exit_code == 0
    (out / "shard-000009.tar").write_bytes(b"stale")  # from an older, larger conversion
    again = convert(csv, out)
    assert again.exit_code == 2 and "--overwrite" in again.stderr and str(out) in again.stderr
    assert convert(csv, out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["shard-000000.tar", "shard-000001.tar"]


def test_strict_stops_at_the_first_bad_image_and_leaves_no_shards(tmp_path):
    csv, _ = make_csv(tmp_path, n=3)
    out = tmp_path / "shards"
    result = convert(csv, out, "--strict")
    assert result.exit_code == 2  # bad input: the one exit code of every command
    assert "cut.jpg" in result.stderr and f"{csv}, line 5" in result.stderr
    assert list(out.glob("*.tar")) == []


def test_malformed_csv_fails_before_writing(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("filepath,title\na.jpg,fine\nb.jpg\n")
    result = runner.invoke(app, ["data", "to-webdataset", str(csv), str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{csv}, line 3" in result.stderr and "missing columns" in result.stderr
    assert not (tmp_path / "out").exists()
    missing = runner.invoke(app, ["data", "to-webdataset", str(tmp_path / "none.csv"), str(tmp_path / "o")])
    assert missing.exit_code == 2 and "none.csv" in missing.stderr


def test_data_help_lists_the_command():
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0 and "to-webdataset" in result.stdout


def test_nothing_usable_is_an_error_and_maxcount_is_checked(tmp_path):
    csv = tmp_path / "gone.csv"
    csv.write_text("filepath,title\nnowhere.jpg,missing\n")
    result = runner.invoke(app, ["data", "to-webdataset", str(csv), str(tmp_path / "out")])
    assert result.exit_code == 2 and "no usable rows" in result.stderr and "file not found" in result.stderr
    assert list((tmp_path / "out").glob("*.tar")) == []
    zero = runner.invoke(app, ["data", "to-webdataset", str(csv), str(tmp_path / "o"), "--maxcount", "0"])
    assert zero.exit_code == 2 and "--maxcount" in zero.stderr
