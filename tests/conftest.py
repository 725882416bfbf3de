import json

import pytest
import torch

from hivae.data import MovingShapes, write_video

torch.set_num_threads(2)


@pytest.fixture
def video_folder(tmp_path):
    """A videofolder of 3 good shapes clips (16 frames at 32x32) with metadata.jsonl."""
    dataset = MovingShapes(3, num_frames=16, size=32, seed=1)
    rows = []
    for index in range(3):
        item = dataset[index]
        write_video(tmp_path / f"clip{index}.mp4", item["video"])
        rows.append({"file_name": f"clip{index}.mp4", "text": item["text"], "label": item["label"]})
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


TINY_HIVAE = dict(
    sample_size=16,
    num_frames=8,
    base_channels=8,
    channel_mults=(1, 2),
    width=16,
    encoder_depth=1,
    decoder_depth=1,
    heads=2,
    structure_channels=4,
    num_queries=2,
    structure_downsample=1,
    qformer_depth=1,
    dynamics_channels=2,
)


@pytest.fixture
def tiny_hivae():
    from hivae import HiVAE

    torch.manual_seed(0)
    return HiVAE(**TINY_HIVAE).eval()


@pytest.fixture(scope="session")
def tiny_text_encoder():
    """A 1-layer, 32-wide random BERT with the packaged MiniLM tokenizer (offline)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from gen.text_encoder import resolve_text_encoder_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_text_encoder_path(), local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return tokenizer, BertModel(config).eval()


@pytest.fixture
def tiny_pipeline(tiny_hivae, tiny_text_encoder):
    from diffusers import FlowMatchEulerDiscreteScheduler

    from gen.dit import HiVAEDiT
    from pipelines import HiVAEVideoPipeline

    torch.manual_seed(0)
    dit = HiVAEDiT.from_tokenizer(tiny_hivae, hidden_size=32, depth=1, heads=2, num_classes=90, text_dim=32).eval()
    tokenizer, encoder = tiny_text_encoder
    pipe = HiVAEVideoPipeline(
        tiny_hivae,
        dit,
        FlowMatchEulerDiscreteScheduler(),
        encoder,
        tokenizer,
        text_encoder_name=None,
        max_text_length=12,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# command-line overrides that shrink configs/dit/shapes-32.yaml to a tiny DiT on TINY_HIVAE's 16x16x8 clips
TINY_DIT_OVERRIDES = [
    "size=null",
    "model.hidden_size=32",
    "model.depth=1",
    "model.heads=2",
    "data.size=16",
    "data.num_frames=8",
    "train.sample_every=0",
    "train.warmup_steps=1",
]


def dit_args(tmp_path, out: str, *extra: str, cache: bool = True) -> list[str]:
    """Arguments of gen/train_dit.py for a tiny run whose tokenizer was saved to tmp_path / "tok"."""
    cache_dir = f"cache_dir={tmp_path / 'cache'}" if cache else "cache_dir=null"
    return [
        "--config",
        "configs/dit/shapes-32.yaml",
        f"tokenizer={tmp_path / 'tok'}",
        cache_dir,
        f"train.output_dir={tmp_path / out}",
        *TINY_DIT_OVERRIDES,
        *extra,
    ]


# command-line overrides that shrink configs/tokenizer/shapes-32.yaml to TINY_HIVAE on 16x16x8 clips
TINY_TOKENIZER_OVERRIDES = [
    "model.sample_size=16",
    "model.num_frames=8",
    "model.base_channels=8",
    "model.channel_mults=[1,2]",
    "model.width=16",
    "model.encoder_depth=1",
    "model.decoder_depth=1",
    "model.heads=2",
    "model.qformer_depth=1",
    "model.num_queries=2",
    "data.size=16",
    "data.num_frames=8",
    "data.num_samples=64",
    "train.batch_size=4",
    "train.warmup_steps=1",
    "train.log_every=1",
    "train.sample_every=0",
    "eval_clips=4",
    "train.ema_decay=0.9",
]
