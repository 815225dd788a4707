"""Pictures of maps, numpy and PIL only, split by concept; every name is importable from ``vitattn.render``.

- ``colors``: colour maps (inferno, diverging), value scaling and colour bars;
- ``canvas``: fonts, fitting, resampling, title bands and stacking;
- ``overlays``: a map over its image with expert boxes, selected cells, marks and the IoU mask (``map_view``);
- ``grids``: strips and grids of maps with where each tile lies (``tiles`` / ``tile_at``), pairs on one scale;
- ``tables``: heat tables with where each cell lies (``heat_table`` / ``table_cell_at``, ``feature_table``);
- ``charts``: per-head dots over depth with where each dot lies (``head_dots`` / ``dot_at``).

A map ``[gh, gw]`` covers the whole image (the model input is the resized image, no crop), so it is stretched over
the picture with bilinear interpolation of its values (half-pixel centres, edge-clamped, as
``vitattn.metrics.upsample``) before colouring. Boxes are normalized ``(x0, y0, x1, y1)`` (``vitattn.boxes``).

    from vitattn import render
    picture = render.map_view(image, heatmap, opacity=0.6, boxes=record.boxes, title="dinov2 · cls · layer 11")
"""

from vitattn.render.canvas import *  # noqa: F403
from vitattn.render.charts import *  # noqa: F403
from vitattn.render.colors import *  # noqa: F403
from vitattn.render.colors import _numbers  # noqa: F401  (a private helper some callers share)
from vitattn.render.fonts import *  # noqa: F403
from vitattn.render.grids import *  # noqa: F403
from vitattn.render.overlays import *  # noqa: F403
from vitattn.render.tables import *  # noqa: F403
