"""Build and maintenance tools, not part of the product; run from the checkout's root.

  python -m tools.examples      writes web/examples/heldout.json, the demo's preset drawings
                                (Omniglot pen trajectories of held-out characters)
  python -m tools.screenshots   the README screenshots (docs/img), from a running demo server
  python -m tools.plot_evaluations  evaluated checkpoints side by side (docs/claims.md's figures),
                                from `python -m training evaluate --json` reports
  bash tools/gpu_check.sh       the CUDA checks CI cannot run, on a lent GPU machine
  bash tools/resume_on_gpu.sh   continues a carried training run (checkpoints/<run>/) on a lent GPU machine

strokes.py (Omniglot's trajectories) and chromium.py (headless Chromium on the demo page) are
shared with benchmarks/stroke_replay.py and the browser benchmarks. The static copy of the demo is
the server's: `reptile-demo export-static DIR`.
"""
