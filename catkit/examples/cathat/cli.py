"""``catkit cathat ...``: train the example model, draw sample images, package archives, predict.

Heavy imports (scikit-learn, Pillow) happen inside the commands so ``catkit --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["default_models_dir", "register"]


def default_models_dir() -> Path:
    """``$CATKIT_HOME/models`` - where cat-hat models and archives go unless ``--out`` is given."""
    from catkit.local.paths import catkit_home

    return catkit_home() / "models"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cathat", help="the cat-hat example model", description="Train, sample, package the cat-hat example."
    )
    sub = parser.add_subparsers(dest="cathat_command", metavar="ACTION", required=True)

    p = sub.add_parser("train", help="train a variant and write a servable model directory")
    p.add_argument("--out", type=Path, help="model directory (default: $CATKIT_HOME/models/cathat-vK)")
    p.add_argument("--variant", type=_non_negative, default=0, help="model variant K (default 0)")
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    p.add_argument("--n-train", type=_positive, default=None, help="training images (default 6000)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("sample", help="draw one synthetic cat image")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--hat", dest="hat", action="store_true", help="the cat wears a hat")
    group.add_argument("--no-hat", dest="hat", action="store_false", help="no hat")
    p.add_argument("--seed", type=int, default=0, help="image seed (same seed = same cat)")
    p.add_argument("--size", type=_positive, default=64, help="side in pixels (default 64)")
    p.add_argument("--out", type=Path, required=True, help="PNG (or .jpg) file to write")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("package", help="train if needed and write cathat-vK.tar.gz archives")
    p.add_argument("--out", type=Path, help="output directory (default: $CATKIT_HOME/models)")
    p.add_argument("--variant", type=_non_negative, action="append", help="variant K (repeatable; default 0)")
    p.add_argument("--count", type=_positive, help="package variants 0..N-1 (multi-model endpoints)")
    p.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    p.add_argument("--n-train", type=_positive, default=None, help="training images (default 6000)")
    p.add_argument("--retrain", action="store_true", help="retrain even if a model is up to date")
    p.set_defaults(func=_cmd_package)

    p = sub.add_parser("predict", help="classify image files with a model directory (no server)")
    p.add_argument("images", nargs="+", type=Path, help="PNG or JPEG files")
    p.add_argument("--model", type=Path, help="model directory (default: $CATKIT_HOME/models/cathat-v0)")
    p.set_defaults(func=_cmd_predict)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _cmd_train(args: argparse.Namespace) -> int:
    from catkit.examples.cathat.train import DEFAULT_N_TRAIN, train

    out = args.out or default_models_dir() / f"cathat-v{args.variant}"
    result = train(out, n_train=args.n_train or DEFAULT_N_TRAIN, seed=args.seed, variant=args.variant)
    print(
        f"cathat variant {result.variant}: held-out accuracy {result.accuracy:.1%} on {result.n_test} images "
        f"(trained on {result.n_train}) in {result.seconds:.1f} s -> {result.model_dir}"
    )
    if result.accuracy < 0.95:
        print(
            "warning: accuracy is below the 95% target; train with more images (--n-train)", file=sys.stderr
        )
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from catkit.examples.cathat.data import make_image

    image = make_image(args.seed, args.hat, size=args.size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        image.save(args.out)
    except (ValueError, KeyError):
        print(
            f"error: cannot tell the image format from {args.out}; use a .png or .jpg name", file=sys.stderr
        )
        return 2
    print(f"{'hat' if args.hat else 'no_hat'} seed={args.seed} -> {args.out}")
    return 0


def _cmd_package(args: argparse.Namespace) -> int:
    from catkit.examples.cathat.package import build_cathat_archive
    from catkit.examples.cathat.train import DEFAULT_N_TRAIN

    out = args.out or default_models_dir()
    variants = list(range(args.count)) if args.count else []
    variants += [v for v in args.variant or [] if v not in variants]
    n_train = args.n_train or DEFAULT_N_TRAIN
    for variant in variants or [0]:
        archive = build_cathat_archive(out, variant, seed=args.seed, n_train=n_train, retrain=args.retrain)
        print(archive)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import importlib.util

    model_dir = args.model or default_models_dir() / "cathat-v0"
    script = model_dir / "code" / "inference.py"
    if not script.is_file():
        print(
            f"error: {script} not found; run `catkit cathat train --out {model_dir}` first", file=sys.stderr
        )
        return 2
    spec = importlib.util.spec_from_file_location("_cathat_cli_inference", script)
    assert spec is not None and spec.loader is not None
    handler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(handler)
    model = handler.model_fn(str(model_dir))
    status = 0
    for path in args.images:
        content_type = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        try:
            data = handler.input_fn(path.read_bytes(), content_type)
        except (OSError, ValueError) as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        body, _ = handler.output_fn(handler.predict_fn(data, model), "application/json")
        print(f"{path}: {json.loads(body)}")
    return status
