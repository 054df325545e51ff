"""Comparing the method with its baselines: every arm fine-tunes the same base student on the same budget of data
and is evaluated on the same splits, over several seeds; plus cross-model transfer and a size curve.

`arms` (what runs), `runs` (running and reusing one arm at one seed), `statistics` (what the results show) and
`report` (the markdown, CSVs and plots).
"""
