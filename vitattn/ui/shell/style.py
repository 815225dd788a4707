"""The page's few style rules (passed to ``launch(css=...)``): text is never cut mid-word or hidden.

- table headers wrap between words only ("saliency", not "salienc / y"); a wide table scrolls sideways;
- the head x feature-type table is shown at its own size and scrolls (it is drawn for reading, not for fitting);
- an exemplar's caption is not laid over its picture's colour-bar label: the picture's own title says the same
  (image, IoU, boxes of the type), and the API still returns the caption;
- the tab bar wraps onto a second line instead of moving tabs into Gradio's overflow menu (which could show the
  selected tab twice and hide another).
"""

CSS = """
table th, table th * { word-break: keep-all !important; overflow-wrap: normal !important; hyphens: none; }
#head-matrix .image-container { display: block !important; overflow: auto !important; max-height: 760px; }
#head-matrix .image-frame { display: block !important; width: max-content !important; height: auto !important; }
#head-matrix img { max-width: none !important; max-height: none !important; width: auto !important;
                   height: auto !important; object-fit: initial !important; }
#head-exemplars .caption-label { display: none !important; }
.tab-wrapper, .tab-container { flex-wrap: wrap !important; height: auto !important; overflow: visible !important; }
.tab-container .overflow-menu, .tab-wrapper .overflow-menu { display: none !important; }
"""
