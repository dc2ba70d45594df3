"""Plotly figure builders for the dashboard (and notebooks): data in, ``go.Figure`` out.

No Streamlit here.  Images are sent as PNG (or, for photos, JPEG) data URIs
(``go.Image(source=...)``) rather than as arrays of numbers, so a figure with a
224 x 224 photo or a tiled image of hundreds of feature maps stays a few tens of
kilobytes; colour mapping is done with :func:`interpret.overlay.colorize`, because a
PNG-backed trace carries no colour scale of its own.  Histograms are binned here
(``np.histogram``) and drawn as bars, so their payload does not grow with the number
of values.

One module per kind of view: :mod:`.images`, :mod:`.predictions`,
:mod:`.activations`, :mod:`.features`, :mod:`.trust`, :mod:`.dataset`, :mod:`.tasks`
(segmentation masks, multi-label bars); :mod:`._base`
holds what they share.  Every
builder is importable from here (``from interpret import figures; figures.X``).
"""

from ._base import (BAR_COLOR, CHANNEL_COLORS, FONT, HIGHLIGHT_COLOR, ImageLike, colorscale,
                    image_trace, jpeg_data_uri, png_bytes, png_data_uri, to_uint8_rgb)
from .activations import (TileGrid, activation_stats, channel_grid_figure,
                          channel_histograms_figure, channel_overlay_figure, histogram_figure,
                          layer_means_figure, rank_channels, tile_grid)
from .features import (CLASS_PALETTE, class_colors, embedding_figure, image_grid_figure,
                       optimization_trace_figure)
from .images import (channel_views, comparison_figure, heatmap_overlay_figure, image_figure,
                     side_by_side)
from .predictions import distribution_figure, entropy_bits, prediction_summary, predictions_bar
from .trust import agreement_figure, box_from_selection, faithfulness_figure, region_figure, road_figure
from .tasks import (click_grid, labels_figure, mask_overlay, point_from_selection, segment_colors,
                    segmentation_figure)
from .detection import detection_from_selection, detections_figure, outline_box, paint_masks
from .dataset import (class_maps_figure, confusion_figure, dataset_embedding_figure, map_gallery_figure,
                      map_heatmap, where_figure)

__all__ = [
    "click_grid", "labels_figure", "mask_overlay", "point_from_selection", "segment_colors",
    "segmentation_figure",
    "BAR_COLOR", "CHANNEL_COLORS", "FONT", "HIGHLIGHT_COLOR", "ImageLike", "image_trace",
    "jpeg_data_uri", "png_bytes", "png_data_uri", "to_uint8_rgb", "TileGrid",
    "activation_stats", "channel_grid_figure", "channel_histograms_figure",
    "channel_overlay_figure", "histogram_figure", "layer_means_figure", "rank_channels",
    "tile_grid", "CLASS_PALETTE", "class_colors", "embedding_figure", "image_grid_figure",
    "optimization_trace_figure", "channel_views", "comparison_figure",
    "heatmap_overlay_figure", "image_figure", "distribution_figure", "entropy_bits",
    "prediction_summary", "predictions_bar", "colorscale", "side_by_side",
    "agreement_figure", "box_from_selection", "faithfulness_figure", "region_figure", "road_figure",
    "class_maps_figure", "confusion_figure", "dataset_embedding_figure", "map_gallery_figure",
    "map_heatmap", "where_figure",
]
