"""Feature visualization: what a channel responds to, by optimisation and by example,
and where images fall in a layer's feature space.

* :func:`visualize_channel` / :func:`optimize`: activation maximization (Olah et al.,
  "Feature Visualization", Distill 2017) with composable objectives
  (:func:`channel`, :func:`unit`, :func:`layer_objective`, :func:`class_logit`,
  :func:`diversity`; ``+``, ``-``, ``*`` by a number), a Fourier / decorrelated-colour
  parameterization and random transforms, seeded.
* :func:`top_activating`: dataset examples, the images and patches of an image set
  that excite a channel most (:func:`images_from_zip`, :func:`images_from_folder`).
* :func:`embed`: a layer's features for an image set projected to 2-D (PCA, t-SNE,
  UMAP), with the predicted classes.
* :func:`export_tensorboard`: embeddings for TensorBoard's projector and image
  summaries.

Nothing here prints, draws or changes the model (no hooks left, no parameter
``.grad``, no train/eval flip); long runs take a callback for progress and
cancellation.
"""

from .dataset import (Example, LayerStatistics, ReceptiveField, activation_means,
                      layer_statistics, receptive_field, top_activating)
from .embedding import METHODS as EMBEDDING_METHODS
from .embedding import Embedding, embed, embedding_features, model_views, pca
from .imagesets import (IMAGE_EXTENSIONS, MAX_SET_BYTES, MAX_SET_IMAGES, ImageSet, as_image_set,
                        images_from_folder, images_from_zip, load_images)
from .objectives import (Activations, Objective, channel, class_logit, diversity,
                         layer_objective, unit)
from .param import ImageParam
from .render import (MAX_BATCH, MAX_SIZE, MAX_STEPS, MIN_SIZE, FeatureVisualization, optimize,
                     visualize_channel)
from .tensorboard import (EXPORT_FOLDER, TensorBoardExport, export_tensorboard,
                          export_tensorboard_zip, write_projector)
from .transforms import (Jitter, Pad, RandomRotate, RandomScale, resolve_transforms,
                         standard_transforms)

__all__ = [
    "visualize_channel", "optimize", "FeatureVisualization", "Objective", "Activations",
    "channel", "unit", "layer_objective", "class_logit", "diversity", "ImageParam",
    "Pad", "Jitter", "RandomScale", "RandomRotate", "standard_transforms",
    "resolve_transforms", "MIN_SIZE", "MAX_SIZE", "MAX_STEPS", "MAX_BATCH",
    "top_activating", "Example", "layer_statistics", "LayerStatistics", "receptive_field",
    "ReceptiveField", "activation_means",
    "ImageSet", "load_images", "images_from_zip", "images_from_folder", "as_image_set",
    "MAX_SET_IMAGES", "MAX_SET_BYTES", "IMAGE_EXTENSIONS",
    "embed", "Embedding", "embedding_features", "pca", "EMBEDDING_METHODS", "model_views",
    "export_tensorboard", "TensorBoardExport", "write_projector", "export_tensorboard_zip",
    "EXPORT_FOLDER",
]
