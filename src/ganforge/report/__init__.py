"""Pictures and pages made from what a run wrote: image grids, scatter plots, curves, the HTML report."""

from ganforge.report.curves import plot_curves, read_metrics
from ganforge.report.html import write_report
from ganforge.report.images import image_grid, save_samples, scatter_plot

__all__ = ["image_grid", "plot_curves", "read_metrics", "save_samples", "scatter_plot", "write_report"]
