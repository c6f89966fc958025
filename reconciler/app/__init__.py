"""The use cases, one module each: typed request in, typed result out, no printing.

cli -> app -> engine -> transport / metrics / journal -> pure core -> model. A use case
owns the reconciler's state (state.py: `open_state`), the connections of one command and
the order of its steps; progress goes to the `Reporter` (and the small views) the CLI
supplies. Errors are `reconciler.errors` subclasses, turned into exit codes by the CLI.

Import a use case from its own module (`from reconciler.app.validate import validate`):
this package re-exports nothing, so loading one use case does not load the others' SSH,
HTTP, git and journal libraries (a command loads only what it uses; tests/test_imports.py).
"""
