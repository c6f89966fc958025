"""`python -m reconciler` is `reconcile`."""

from reconciler.cli.app import main

main()
