"""What the subcommands share: the model options and how they load a model."""

from __future__ import annotations

import argparse

EXIT_BAD_INPUT = 2


def load_model(args):
    import interpret

    src = args.model
    kwargs = {}
    if getattr(args, "arch", None):
        kwargs["arch"] = args.arch
    if getattr(args, "labels", None):
        kwargs["labels"] = args.labels
    if getattr(args, "allow_untrusted", False):
        kwargs["allow_untrusted"] = True
    if src.startswith("torchvision:") and getattr(args, "random_init", False):
        kwargs["weights"] = None
    return interpret.load_model(src, **kwargs)


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="efficientnet_lite0",
                   help="'efficientnet_lite0' (bundled, default), 'torchvision:<name>' or a checkpoint file")
    p.add_argument("--arch", help="torchvision architecture of a state-dict checkpoint")
    p.add_argument("--labels", help="labels file (.txt one per line, or .json)")
    p.add_argument("--random-init", action="store_true",
                   help="torchvision models: random weights instead of pretrained")
    p.add_argument("--allow-untrusted", action="store_true",
                   help="allow pickled modules / TorchScript / .pt2 (they run code from the file)")


