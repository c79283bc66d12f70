"""Pictures and pages made from what a run wrote: image grids, scatter plots, curves, the HTML report."""

from ganforge.report.arrays import samples_array, write_npz
from ganforge.report.curves import curves_figure, plot_curves, read_metrics
from ganforge.report.html import write_report
from ganforge.report.images import image_grid, png_bytes, save_samples, scatter_figure, scatter_plot
from ganforge.report.latent import nearest_neighbours, slerp

__all__ = [
    "curves_figure",
    "image_grid",
    "nearest_neighbours",
    "plot_curves",
    "png_bytes",
    "read_metrics",
    "save_samples",
    "scatter_figure",
    "scatter_plot",
    "samples_array",
    "slerp",
    "write_npz",
    "write_report",
]
