"""The implementation before issue 14 ("no stall you can feel, a long run opens at
once"), frozen here so that the benchmarks can run it side by side with the current
one in the same process: ``metrics_plot_before`` (MetricsPlot: full draws, whole-series
decimation and smoothing), ``experiments_model_before`` (every row read, every row
signalled on refresh) and ``history_before`` (the history as one SQL query of tuples).
Not used by the app."""
