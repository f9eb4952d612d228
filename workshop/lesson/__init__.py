"""Lessons as data: the model, the lesson-file loader, variables, checks, the catalog and progress."""
