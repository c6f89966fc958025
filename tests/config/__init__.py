"""Tests of the config core: safe loading, layering laws, validation corpus, rendering."""
