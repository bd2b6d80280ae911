"""`ilab-gitops status`: what the cluster says about a run's steps.

`classify` (objects -> rows) and `render` (rows -> table or JSON) are pure; `cluster` reads
the objects with the kubernetes client, imported lazily.
"""
