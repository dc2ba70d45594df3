"""Where models come from.  Each loader builds an ``nn.Module`` in eval mode and the
:class:`~interpret.handle.ModelInfo` that goes with it (labels, preprocessing, token
layout); :func:`interpret.load_model` picks the loader.

* :mod:`.bundled` - the bundled EfficientNet-Lite0 (offline);
* :mod:`.torchvision` - torchvision classifiers by name, with their weight metadata;
* :mod:`.files` - checkpoint files: state dicts and safetensors (safe), pickles,
  TorchScript and ``torch.export`` archives (only when untrusted formats are allowed);
* :mod:`.download` - downloads with a time limit and a checksum.
"""
