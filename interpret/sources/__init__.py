"""Where models come from.  Each loader builds an ``nn.Module`` in eval mode and the
:class:`~interpret.handle.ModelInfo` that goes with it (labels, preprocessing, token
layout, suggested layer); :func:`interpret.load_model` picks the loader.

* :mod:`.bundled` - the bundled EfficientNet-Lite0 (offline);
* :mod:`.torchvision` - torchvision classifiers by name, with their weight metadata;
* :mod:`.timm` - timm models by name or for a state dict, read from timm's metadata;
* :mod:`.hf` - Hugging Face ``transformers`` image classifiers saved as a folder (or zip);
* :mod:`.onnx` - ONNX graphs, converted to PyTorch by onnx2torch;
* :mod:`.ultralytics` - Ultralytics YOLO detectors from the package's own YAML
  (``arch="ultralytics:yolov8n.yaml"``), their ONNX exports and (untrusted only) ``.pt``;
* :mod:`.factory` - the team's own architecture code (``package.module:function``);
* :mod:`.files` - checkpoint files: state dicts and safetensors (safe), pickles,
  TorchScript and ``torch.export`` archives (only when untrusted formats are allowed);
  mismatch messages; which architecture a state dict is loaded into;
* :mod:`.modules` - what a built module says about itself (any of the above);
* :mod:`.download` - downloads with a time limit and a checksum.
"""
