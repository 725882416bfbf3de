import json

from hivae.cli import main
from hivae.data import VideoFolderDataset


def test_cli_shapes_writes_a_videofolder(tmp_path, capsys):
    assert main(["shapes", "--out", str(tmp_path / "s"), "--num", "2", "--size", "32", "--gif"]) == 0
    assert "wrote 2 clips" in capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "s" / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and (tmp_path / "s" / "clip_00000.gif").is_file()
    assert VideoFolderDataset(tmp_path / "s", num_frames=16)[1]["label"] == rows[1]["label"]


def test_cli_reports_errors(capsys):
    assert main(["shapes", "--out", "/tmp/x", "--size", "2"]) == 2
    assert "error: size must be at least 8" in capsys.readouterr().err
