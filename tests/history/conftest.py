"""The 5-box demo fleet of the resume tests (metric gates off), shared."""

from resume.conftest import fleet

__all__ = ["fleet"]
