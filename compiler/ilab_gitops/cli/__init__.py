"""The command line: `entry` (typer-free fast path), `typer_app`, one module per command group.

Each module exposes `register(app: typer.Typer) -> None`, called from typer_app.py, and imports its
heavy dependencies inside the command functions so `ilab-gitops --help` stays fast.
"""
