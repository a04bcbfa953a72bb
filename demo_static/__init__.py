"""Web-demo build tools: the preset example drawings (`python -m demo_static.examples`, which reads
the dataset through training/) and README screenshots. The server-less static copy of the demo
lives with the server (server/export_static.py, `reptile-demo export-static DIR`); `python -m
demo_static export DIR` is kept as an alias."""
