"""Web-demo build tools that need Python: the preset example drawings (`python -m demo_static.examples`)
and the server-less static copy of the demo (`python -m demo_static export DIR`, the logic behind
`reptile-demo export-static DIR`). Imports the standard library, numpy, jinja2 and Pillow only."""
