"""interpret: see why a PyTorch image model says what it says.

>>> import interpret
>>> model = interpret.load_model("efficientnet_lite0")
>>> image = interpret.load_image("cat.jpg")
>>> interpret.predict(model, image, top_k=5)
>>> e = interpret.explain(model, image, "gradcam")
"""

from .errors import Cancelled, InputError
from .capture import LayerMaps
from .explain import (Explanation, LayerSummary, ModelInput, Prediction, SegmentClass, Segmentation,
                      estimate_cost, explain, layer_maps, layer_summary, model_input, predict,
                      resolve_target)
from . import targets  # noqa: F401  (interpret.targets.region, ...)
from .detection import Detection
from . import features  # noqa: F401  (interpret.features.channel, ...)
from .features import (FeatureVisualization, embed, export_tensorboard, images_from_folder,
                       images_from_zip, top_activating, visualize_channel)
from .dataset import DatasetResult, analyze_dataset, open_dataset
from .handle import ModelHandle, ModelInfo
from .images import MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, load_image
from .layers import LayerInfo, default_layer, list_layers
from .methods import Cost, MethodSpec, Param, get_method, methods
from .models import DEFAULT_MODEL, load_model, torchvision_classifiers
from .overlay import COLORMAPS, colorize, heatmap_image, overlay
from .preprocessing import Preprocessing
from .tokens import TokenLayout
from . import trust  # noqa: F401  (interpret.trust.measures(), ...)
from .trust import (Agreement, BoxContext, Faithfulness, Localization, Road, SanityCheck, agreement,
                    box_context, faithfulness, localization, road, sanity_check)
from .report import report  # the function (the module is interpret.report too)
from .concepts import concepts, discover_concepts, name_concept, reference_patches, tcav  # functions (the package is interpret.concepts too)

__version__ = "0.1.0"

__all__ = [
    "InputError", "Explanation", "Prediction", "explain", "predict", "estimate_cost",
    "layer_summary", "LayerSummary", "layer_maps", "LayerMaps",
    "resolve_target", "load_image", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "LayerInfo",
    "list_layers", "default_layer", "Cancelled", "Cost", "MethodSpec", "Param", "get_method",
    "methods", "DEFAULT_MODEL", "ModelHandle", "ModelInfo", "load_model", "torchvision_classifiers",
    "COLORMAPS", "colorize", "heatmap_image", "overlay", "Preprocessing", "TokenLayout",
    "__version__", "features", "visualize_channel", "FeatureVisualization", "top_activating",
    "embed", "export_tensorboard", "images_from_zip", "images_from_folder",
    "model_input", "ModelInput",
    "trust", "faithfulness", "Faithfulness", "road", "Road", "sanity_check", "SanityCheck",
    "agreement", "Agreement", "localization", "Localization", "report", "box_context", "BoxContext",
    "analyze_dataset", "open_dataset", "DatasetResult",
    "targets", "Segmentation", "SegmentClass", "Detection",
    "concepts", "discover_concepts", "reference_patches", "tcav", "name_concept",
]
