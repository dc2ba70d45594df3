"""What the subcommands share: the model options and how they load a model."""

from __future__ import annotations

import argparse
import json

EXIT_BAD_INPUT = 2

_BY_NAME = ("torchvision:", "timm:", "open_clip:")


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
    if getattr(args, "task", None):
        kwargs["task"] = args.task
    if getattr(args, "prompts", None):
        kwargs["prompts"] = prompts_of(args.prompts)
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
    p.add_argument("--prompts", nargs="+", metavar="PROMPT",
                   help="image-text models (open_clip:<name>, a CLIP/SigLIP folder): the prompts "
                        "that are the classes, e.g. --prompts 'a photo of a cat' 'a photo of a dog', "
                        "or one .txt file (one prompt per line)")
    p.add_argument("--task", choices=("classification", "multilabel", "binary", "regression",
                                      "segmentation", "image-text", "embedding"),
                   help="what the model's output means (default: read from the model and its "
                        "output's shape; one output means binary)")


def add_explanation_args(p: argparse.ArgumentParser) -> None:
    """What to explain: the method, layer, class, contrast class and parameters."""
    p.add_argument("image")
    p.add_argument("--method", "-m", default="gradcam")
    p.add_argument("--layer")
    p.add_argument("--target", help="class index or label (default: the top prediction)")
    p.add_argument("--contrast", help="explain the target *rather than* this class")
    p.add_argument("--reference", metavar="PHOTO",
                   help="embedding and image-text models: explain why the image looks like this "
                        "reference photo (cosine similarity of their embeddings)")
    p.add_argument("--lower", action="store_true",
                   help="binary and regression models: explain what lowers the output")
    p.add_argument("--region", metavar="X0,Y0,X1,Y1",
                   help="segmentation models: explain the target class inside this box "
                        "(in the photo's pixels)")
    p.add_argument("--param", "-p", action="append", help="method parameter NAME=VALUE (repeatable)")


def prompts_of(values):
    """``--prompts``: the texts, or the lines of one .txt file."""
    import os

    import interpret

    if len(values) == 1 and values[0].endswith(".txt") and os.path.isfile(values[0]):
        if os.path.getsize(values[0]) > 1 << 20:
            raise interpret.InputError("The prompts file is over 1 MB.")
        with open(values[0], encoding="utf-8") as fh:
            return [line for line in fh.read().splitlines() if line.strip()]
    return list(values)


def target_of(args, model):
    """``--target`` / ``--lower`` / ``--region`` as what :func:`interpret.explain` takes:
    an :mod:`interpret.targets` target where the task needs one, else the text."""
    import os

    import interpret
    from interpret import targets

    task = model.task
    box = getattr(args, "region", None)
    lower = getattr(args, "lower", False)
    if box:
        if task != "segmentation":
            raise interpret.InputError(f"--region applies to segmentation models; this one is {task}.")
        try:
            coords = tuple(float(v) for v in box.split(","))
        except ValueError:
            coords = ()
        if len(coords) != 4:
            raise interpret.InputError(f"--region takes X0,Y0,X1,Y1 in the photo's pixels, got '{box}'.")
        if args.target is None:
            raise interpret.InputError("--region needs --target: the class to explain inside the box.")
        return targets.region(args.target, mask=coords, contrast=getattr(args, "contrast", None))
    reference = getattr(args, "reference", None)
    if reference:
        return targets.similar_to(interpret.load_image(reference), os.path.basename(reference))
    if task == "embedding":
        raise interpret.InputError("An embedding model is explained by its similarity to a reference "
                                   "photo: --reference PHOTO.")
    if task == "image-text" and args.target is not None:  # any text, listed or not
        return targets.text(args.target, getattr(args, "contrast", None))
    if lower:
        if task not in ("binary", "regression"):
            raise interpret.InputError(f"--lower applies to binary and regression models; this one is {task}.")
        idx = 0 if args.target is None else args.target
        if isinstance(idx, str) and idx.strip().isdigit():
            idx = int(idx)
        if isinstance(idx, str):
            idx = interpret.resolve_target(model, idx, None, "output")
        return targets.output(idx, sign=-1)
    return args.target
