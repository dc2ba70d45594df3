"""What the subcommands share: the model options and how they load a model."""

from __future__ import annotations

import argparse
import json

EXIT_BAD_INPUT = 2

_BY_NAME = ("torchvision:", "timm:")


def load_model(args):
    """The model the options name: ``--model`` (bundled, ``torchvision:<name>``,
    ``timm:<name>``, a checkpoint, ONNX file, Hugging Face folder or zip) with
    ``--arch`` / ``--arch-kwargs`` for state dicts, ``--weights`` / ``--random-init``
    for models by name, ``--labels`` and ``--allow-untrusted``."""
    import interpret

    src = args.model
    kwargs = {}
    if getattr(args, "arch", None):
        kwargs["arch"] = args.arch
    if getattr(args, "arch_kwargs", None):
        try:
            kw = json.loads(args.arch_kwargs)
        except json.JSONDecodeError as exc:
            raise interpret.InputError(f"--arch-kwargs is not valid JSON: {exc}") from None
        if not isinstance(kw, dict):
            raise interpret.InputError("--arch-kwargs must be a JSON object, e.g. '{\"width\": 64}'.")
        kwargs["arch_kwargs"] = kw
    if getattr(args, "labels", None):
        kwargs["labels"] = args.labels
    if getattr(args, "allow_untrusted", False):
        kwargs["allow_untrusted"] = True
    if src.startswith(_BY_NAME):
        if getattr(args, "random_init", False):
            kwargs["weights"] = None
        elif getattr(args, "weights", None):
            kwargs["weights"] = args.weights
    return interpret.load_model(src, **kwargs)


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="efficientnet_lite0",
                   help="'efficientnet_lite0' (bundled, default), 'torchvision:<name>', "
                        "'timm:<name>', a checkpoint file (.pth/.safetensors, with --arch), an "
                        ".onnx file, or a Hugging Face folder (or .zip of one)")
    p.add_argument("--arch", help="architecture of a state-dict checkpoint: a torchvision name "
                                  "(resnet18 or torchvision:resnet18), timm:<name>, "
                                  "efficientnet_lite0, or your own code as package.module:function")
    p.add_argument("--arch-kwargs", metavar="JSON",
                   help="keyword arguments for a package.module:function architecture, as JSON")
    p.add_argument("--labels", help="labels file (.txt one per line, or .json)")
    p.add_argument("--weights", help="models by name: torchvision weight name or timm pretrained "
                                     "tag (default: the library's default)")
    p.add_argument("--random-init", action="store_true",
                   help="torchvision and timm models by name: random weights instead of pretrained")
    p.add_argument("--allow-untrusted", action="store_true",
                   help="allow pickled modules / TorchScript / .pt2 / Hugging Face remote code "
                        "(they run code from the file)")


def add_explanation_args(p: argparse.ArgumentParser) -> None:
    """What to explain: the method, layer, class, contrast class and parameters."""
    p.add_argument("image")
    p.add_argument("--method", "-m", default="gradcam")
    p.add_argument("--layer")
    p.add_argument("--target", help="class index or label (default: the top prediction)")
    p.add_argument("--contrast", help="explain the target *rather than* this class")
    p.add_argument("--param", "-p", action="append", help="method parameter NAME=VALUE (repeatable)")
