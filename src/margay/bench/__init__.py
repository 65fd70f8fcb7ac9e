"""The benchmark harness (`margay bench`, `make bench`): named scenarios, results as JSON and Markdown."""
