"""The demo's FastAPI server: the pages, the static files, and server-side adaptation on the ONNX bundle.

Imports fastapi, uvicorn, jinja2, numpy, onnxruntime, Pillow and the project's `bundle/` and
`preprocessing/` packages only; never torch or `training/` (tests/test_server.py checks it).
Entry points: `reptile-demo serve` (server.cli:main), `python -m server`, `server.app.create_app`.
"""
