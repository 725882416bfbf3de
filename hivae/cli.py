"""The `hivae` command line. Each subcommand lives in a small function registered in `COMMANDS`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _add_shapes(sub) -> None:
    p = sub.add_parser("shapes", help="render synthetic moving-shapes clips into a videofolder (mp4 + metadata.jsonl)")
    p.add_argument("--out", default="outputs/shapes", help="output folder")
    p.add_argument("--num", type=int, default=8, help="number of clips")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--second-object-prob", type=float, default=0.0)
    p.add_argument("--gif", action="store_true", help="also write a .gif next to each mp4")
    p.set_defaults(run=_run_shapes)


def _run_shapes(args) -> None:
    from hivae.data import MovingShapes, write_video

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = MovingShapes(args.num, args.frames, args.size, args.seed, args.second_object_prob)
    rows = []
    for index in range(len(dataset)):
        item = dataset[index]
        name = f"clip_{index:05d}.mp4"
        write_video(out / name, item["video"])
        if args.gif:
            write_video((out / name).with_suffix(".gif"), item["video"])
        rows.append({"file_name": name, "text": item["text"], "label": item["label"]})
    (out / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} clips and metadata.jsonl to {out.resolve()}")


COMMANDS = [_add_shapes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hivae", description="hierarchical video tokenizer and generator")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"hivae {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
