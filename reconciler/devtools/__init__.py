"""Developer tools that write the project's generated files (I/O; not used by `reconcile`)."""
