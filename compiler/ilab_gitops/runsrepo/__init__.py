"""Runs-repo tooling: scaffold a repo, compare its runs with a git ref, summarise a PR.

The pure parts (field diffs, snapshots, classification, reports) import no git library; only
`gitsource` does, and the CLI imports it inside the commands that need it.
"""
