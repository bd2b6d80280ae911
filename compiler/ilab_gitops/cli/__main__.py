"""`python -m ilab_gitops.cli.typer_app`: the console script."""

from ilab_gitops.cli.entry import main

main()
