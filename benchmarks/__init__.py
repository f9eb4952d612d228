"""Benchmarks for workshop: one command (`python -m benchmarks`) that measures and prints a table.

See `benchmarks/README.md` for what each row measures and how.
"""
