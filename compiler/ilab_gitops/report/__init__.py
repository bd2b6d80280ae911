"""A run's report: plots (PNG) and one self-contained HTML page from its results folder.

`inputs` reads what a run left (results.json, training metrics, step markers, the spec),
tolerating what is missing; `plots` draws deterministic PNGs with matplotlib (the `report`
extra); `page` assembles the HTML. Nothing here touches the network.
"""
