import json
import logging

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hivae.data import (
    COLOURS,
    MOTIONS,
    SHAPES,
    DataConfig,
    HFVideoDataset,
    MovingShapes,
    VideoFolderDataset,
    VideoReadError,
    build_dataset,
    class_attributes,
    class_id,
    class_names,
    clip_indices,
    collate_clips,
    read_video,
    video_info,
    write_video,
)


def test_shapes_deterministic_and_any_size():
    a = MovingShapes(5, num_frames=8, size=(24, 40), seed=3)[2]
    b = MovingShapes(50, num_frames=8, size=(24, 40), seed=3)[2]
    assert torch.equal(a["video"], b["video"]) and a["text"] == b["text"]
    assert a["video"].shape == (3, 8, 24, 40)
    assert a["video"].min() >= -1 and a["video"].max() <= 1
    c = MovingShapes(5, num_frames=8, size=(24, 40), seed=4)[2]
    assert not torch.equal(a["video"], c["video"])


def test_shapes_class_table_is_stable():
    names = class_names()
    assert len(names) == len(SHAPES) * len(COLOURS) * len(MOTIONS) >= 3 * 6 * 5
    assert names[0] == "red circle left"
    assert names[class_id("triangle", "magenta", "still")] == "magenta triangle still"
    for label in range(len(names)):
        assert class_id(*class_attributes(label)) == label
    with pytest.raises(ValueError, match="unknown colour 'pink'"):
        class_id("circle", "pink", "left")


@pytest.mark.parametrize("motion,axis,sign", [("left", 3, -1), ("right", 3, 1), ("up", 2, -1), ("down", 2, 1)])
def test_shapes_motion_moves_the_object(motion, axis, sign):
    dataset = MovingShapes(4, num_frames=16, size=32, motions=(motion,))
    video = dataset[0]["video"]
    mass = (video.max(0).values > -0.5).float()  # (T, H, W) object mask on a black background
    coords = torch.arange(32.0)
    centres = [(mass[t].sum(0 if axis == 3 else 1) * coords).sum() / mass[t].sum() for t in (0, 15)]
    assert sign * (centres[1] - centres[0]) > 3, (motion, centres)


def test_shapes_caption_and_second_object():
    dataset = MovingShapes(40, num_frames=4, size=16, second_object_prob=1.0, backgrounds=("noise", "gradient"))
    item = dataset[0]
    assert " and a " in item["text"] and item["text"].startswith(f"a {item['colour']} {item['shape']}")
    with pytest.raises(ValueError, match="backgrounds"):
        MovingShapes(4, backgrounds=("plaid",))
    with pytest.raises(ValueError, match="size"):
        MovingShapes(4, size=0)


def test_write_read_roundtrip_mp4_and_gif(tmp_path):
    video = MovingShapes(1, num_frames=12, size=32)[0]["video"]
    for name in ("clip.mp4", "clip.gif"):
        path = write_video(tmp_path / name, video, fps=8)
        info = video_info(path)
        assert (info.num_frames, info.height, info.width) == (12, 32, 32)
        back = read_video(path, num_frames=12, backend="pyav")
        assert back.shape == video.shape
        assert (back - video).abs().mean() < 0.05
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.gif", "clip.mp4"]  # no temp files left


def test_read_video_sampling_resize_and_backends(tmp_path):
    video = MovingShapes(1, num_frames=16, size=(32, 48))[0]["video"]
    path = write_video(tmp_path / "clip.mp4", video)
    clip = read_video(path, num_frames=4, stride=3, start=2, size=16)
    assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32
    assert clip.min() >= -1 and clip.max() <= 1
    square = write_video(tmp_path / "square.mp4", video[..., :32])
    a = read_video(square, 8, backend="decord")
    b = read_video(square, 8, backend="pyav")
    assert torch.allclose(a, b, atol=2 / 255)
    g = torch.Generator().manual_seed(0)
    assert read_video(path, 4, start="random", generator=g).shape == (3, 4, 32, 48)
    assert clip_indices(10, 4, 2, "center") == [1, 3, 5, 7]


def test_bad_inputs_give_clear_errors(tmp_path):
    good = write_video(tmp_path / "short.mp4", MovingShapes(1, num_frames=4, size=16)[0]["video"])
    with pytest.raises(VideoReadError, match=r"short.mp4: has 4 frames, need at least 16"):
        read_video(good, num_frames=16)
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x01garbage" * 100)
    for backend in ("decord", "pyav"):
        with pytest.raises(VideoReadError, match="corrupt.mp4: cannot be decoded"):
            read_video(tmp_path / "corrupt.mp4", 4, backend=backend)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty.mp4: file is empty"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(VideoReadError, match="notes.txt: unsupported extension"):
        read_video(tmp_path / "notes.txt")
    with pytest.raises(VideoReadError, match="missing.mp4: no such video file"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="size must be positive"):
        read_video(good, 2, size=(0, 16))
    with pytest.raises(ValueError, match="cannot write '.avi'"):
        write_video(tmp_path / "out.avi", torch.zeros(3, 2, 8, 8))


def test_folder_dataset_and_loader(video_folder):
    dataset = VideoFolderDataset(video_folder, num_frames=8, size=16, sampling="center")
    assert len(dataset) == 3
    batch = next(iter(DataLoader(dataset, batch_size=3, collate_fn=collate_clips)))
    assert batch["video"].shape == (3, 3, 8, 16, 16)
    assert batch["label"].dtype == torch.int64 and len(batch["text"]) == 3


def test_folder_dataset_csv_and_no_metadata(video_folder):
    rows = [json.loads(line) for line in (video_folder / "metadata.jsonl").read_text().splitlines()]
    (video_folder / "metadata.jsonl").unlink()
    assert len(VideoFolderDataset(video_folder, num_frames=4)) == 3  # every video, unlabelled
    (video_folder / "metadata.csv").write_text(
        "file_name,label\n" + "".join(f"{r['file_name']},{r['label']}\n" for r in rows)
    )
    item = VideoFolderDataset(video_folder, num_frames=4)[1]
    assert item["label"] == rows[1]["label"] and "text" not in item


def test_folder_dataset_bad_files_skipped_or_strict(video_folder, caplog):
    (video_folder / "broken.mp4").write_bytes(b"not a video at all")
    with (video_folder / "metadata.jsonl").open("a") as handle:
        handle.write(json.dumps({"file_name": "broken.mp4", "text": "x"}) + "\n")
        handle.write(json.dumps({"file_name": "gone.mp4", "text": "y"}) + "\n")
    dataset = VideoFolderDataset(video_folder, num_frames=8)
    with caplog.at_level(logging.WARNING):
        items = [dataset[i] for i in range(len(dataset))] + [dataset[3]]
    assert len(items) == 6 and dataset.num_skipped == 2
    assert sum("skipping bad video" in r.message for r in caplog.records) == 2  # one warning per file
    strict = VideoFolderDataset(video_folder, num_frames=8, strict=True)
    with pytest.raises(VideoReadError, match="broken.mp4"):
        strict[3]


def test_folder_metadata_errors(tmp_path):
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"text": "no file"}) + "\n")
    with pytest.raises(ValueError, match="metadata.jsonl: row 1 has no 'file_name' column"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a.mp4"}) + "\n")
    with pytest.raises(ValueError, match="needs a 'text' and/or 'label' column"):
        VideoFolderDataset(tmp_path)
    (tmp_path / "metadata.jsonl").write_text("{broken\n")
    with pytest.raises(ValueError, match="metadata.jsonl:1: not valid JSON"):
        VideoFolderDataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VideoFolderDataset(tmp_path / "nope")


def test_hf_dataset_adapter(video_folder):
    import datasets

    rows = [json.loads(line) for line in (video_folder / "metadata.jsonl").read_text().splitlines()]
    hf = datasets.Dataset.from_list(rows)
    dataset = HFVideoDataset(hf, root=video_folder, num_frames=8, size=16)
    item = dataset[0]
    assert item["video"].shape == (3, 8, 16, 16) and item["text"] == rows[0]["text"]
    with pytest.raises(ValueError, match="no video column"):
        HFVideoDataset(datasets.Dataset.from_list([{"text": "a"}]))


def test_build_dataset_from_config(video_folder):
    shapes = build_dataset(DataConfig(num_samples=7, size=16, num_frames=4))
    assert len(shapes) == 7 and shapes[0]["video"].shape == (3, 4, 16, 16)
    folder = build_dataset(DataConfig(source="folder", root=str(video_folder), num_frames=4, size=16))
    assert folder[0]["video"].shape == (3, 4, 16, 16)
    with pytest.raises(ValueError, match="data.root is required"):
        build_dataset(DataConfig(source="folder"))


def test_frames_tensor_roundtrip():
    from hivae.data import frames_to_tensor, tensor_to_frames

    frames = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(tensor_to_frames(frames_to_tensor(frames)), frames)
    with pytest.raises(ValueError, match="uint8"):
        frames_to_tensor(frames.astype(np.float32))


def test_two_timescale_class_table_and_captions():
    from hivae.data import FULL_TABLE, LEGACY_TABLE, PATTERNS, ClassTable, caption

    assert len(FULL_TABLE) == 3 * 6 * 5 * 4 and len(LEGACY_TABLE) == 90
    assert LEGACY_TABLE.names() == class_names()  # the original ids are unchanged
    for label in range(len(FULL_TABLE)):
        assert FULL_TABLE.id(*FULL_TABLE.attributes(label)) == label
        assert FULL_TABLE.parse(FULL_TABLE.name(label)) == label
    assert FULL_TABLE.name(FULL_TABLE.id("circle", "red", "left", "blinking")) == "red circle left blinking"
    assert ClassTable.from_names(FULL_TABLE.names()) == FULL_TABLE
    assert caption("circle", "red", "left", "blinking") == "a red circle moving left while blinking"
    assert caption("circle", "red", "still", "steady") == "a red circle staying still"
    with pytest.raises(ValueError, match="unknown class 'red blob'"):
        FULL_TABLE.parse("red blob")
    assert set(PATTERNS) == {"steady", "blinking", "pulsing", "shaking"}


def _object_mask(video):
    return video.max(0).values > -0.5  # (T, H, W) on a black background


@pytest.mark.parametrize("pattern", ["blinking", "pulsing", "shaking"])
def test_fast_patterns_render_as_specified(pattern):
    data = MovingShapes(8, 16, 64, seed=2, patterns=(pattern,), motions=("still",))
    for i in range(8):
        item, (track,), _ = data[i], *data.sample_tracks(i)
        mask = _object_mask(item["video"]).float()
        area = mask.flatten(1).sum(1)
        assert item["pattern"] == pattern and item["text"].endswith(f"while {pattern}")
        if pattern == "blinking":  # half the frames empty, in runs of the period's half
            period = track.details["period"]
            assert (area == 0).sum() == 8 and torch.equal(area[period:] == 0, area[:-period] == 0)
        elif pattern == "pulsing":  # radius +-40% with period 4
            assert area.max() / area.min() > 2.5 and torch.allclose(area[4:], area[:-4], rtol=0.05)
        else:  # horizontal jumps of 5-8% of the width
            xs = (mask * torch.arange(64.0)).sum((1, 2)) / mask.sum((1, 2))
            jumps = (xs[1:] - xs[:-1]).abs()
            assert jumps.max() <= 2 * 0.08 * 64 + 1 and jumps.max() >= 2 * 0.05 * 64 - 1


def test_path_variation_curves_and_changes_speed_but_keeps_the_net_direction():
    data = MovingShapes(40, 16, 64, seed=9, motions=("right",), path_variation=1.0)
    bows, gammas = [], []
    for i in range(40):
        (track,), _ = data.sample_tracks(i)
        assert track.centres[-1, 0] - track.centres[0, 0] > 0.1  # net direction: right
        assert (track.centres >= 0).all() and (track.centres <= 1).all()
        bows.append(abs(track.details["bow"]))
        gammas.append(track.details["gamma"])
    assert max(bows) > 0.06 and min(gammas) < 0.8 < 1.25 < max(gammas)
    straight = MovingShapes(4, 16, 64, seed=9, motions=("right",))
    (track,), _ = straight.sample_tracks(0)
    assert np.allclose(np.diff(track.centres[:, 0]), np.diff(track.centres[:, 0])[0])  # the original domain


def test_dit_stores_its_class_table(tmp_path, tiny_hivae):
    from gen.dit import HiVAEDiT
    from hivae.data import FULL_TABLE

    dit = HiVAEDiT.from_tokenizer(
        tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=360, text_dim=0, class_names=FULL_TABLE.names()
    )
    dit.save_pretrained(tmp_path)
    assert HiVAEDiT.from_pretrained(tmp_path).config.class_names == FULL_TABLE.names()
    with pytest.raises(ValueError, match="class_names has 90 names for num_classes=360"):
        HiVAEDiT(num_classes=360, text_dim=0, class_names=class_names())


def test_dit_class_factors_are_the_tables_attributes(tiny_hivae):
    """A factored class id splits into exactly the table's shape, colour, path and pattern (else the factor vectors
    would mix attributes), and a config whose factors do not match the table is refused."""
    from gen.dit import HiVAEDiT
    from gen.dit_config import DiTTrainConfig, build_dit
    from hivae.config import ConfigError
    from hivae.data import FULL_TABLE

    dit = HiVAEDiT.from_tokenizer(
        tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=360, class_factors=FULL_TABLE.factors()
    )
    digits = torch.stack(dit.class_digits(torch.arange(360)), dim=1).tolist()
    tables = (FULL_TABLE.shapes, FULL_TABLE.colours, FULL_TABLE.motions, FULL_TABLE.patterns)
    expected = [[t.index(a) for t, a in zip(tables, FULL_TABLE.attributes(i))] for i in range(360)]
    assert digits == expected
    config = DiTTrainConfig()
    config.data.patterns = list(FULL_TABLE.patterns)
    config.model = {"hidden_size": 32, "depth": 1, "heads": 2, "num_classes": 360, "class_factors": [6, 3, 5, 4]}
    with pytest.raises(ConfigError, match="class_factors"):
        build_dit(config, tiny_hivae, text_dim=0)
    config.model["class_factors"] = [3, 6, 5, 4]
    assert build_dit(config, tiny_hivae, text_dim=0).config.class_names == FULL_TABLE.names()
