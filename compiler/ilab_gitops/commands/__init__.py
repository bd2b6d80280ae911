"""CLI command modules beyond the core (validate/render/schema live in cli.py).

Each module exposes `register(app: typer.Typer) -> None`, called from cli.py, and imports its
heavy dependencies inside the command functions so `ilab-gitops --help` stays fast.
"""
